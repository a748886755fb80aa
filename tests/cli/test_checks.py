"""``doorward info`` and ``doorward config check``: what they tell, and that no secret is ever in it."""

from __future__ import annotations

import re

from sqlalchemy import make_url

from doorward import __version__
from doorward.config import Settings
from doorward.storage import downgrade
from tests.cli.conftest import assert_one_line_error, human_lines, invoke
from tests.db import head_revision

SECRET = "a-secret-value-of-forty-characters-or-so"


def with_password(database_url: str) -> str:
    """The URL with a password (PostgreSQL's test server trusts every connection, so it is ignored)."""
    if not database_url.startswith("postgresql"):
        return database_url
    return make_url(database_url).set(password=SECRET).render_as_string(hide_password=False)


def test_info_tells_version_database_migrations_profile_and_stores(database_url: str) -> None:
    url = with_password(database_url)
    result = invoke(url, "info")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"doorward {__version__}"
    shown = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines[1:])
    masked = url.replace(SECRET, "***")
    assert (
        shown["database"] == f"{masked}: reachable; migrations at {head_revision()}, the newest: up to date"
    )
    assert re.fullmatch(
        r"testing: argon2id m=8 KiB t=1 p=1; one verify took \d+\.\d\d ms here", shown["hash profile"]
    )
    assert shown["redis"] == "not set (throttle counters in the database)"
    assert SECRET not in result.output


def test_info_says_when_migrations_are_behind(sqlite_url: str) -> None:
    downgrade(sqlite_url, "-1")
    result = invoke(sqlite_url, "info")
    assert result.exit_code == 0, result.output
    assert f"the newest is {head_revision()}: run doorward migrate" in result.stdout


def test_info_checks_redis_when_set_and_fails_when_a_store_does_not_answer(
    sqlite_url: str, redis_url: str
) -> None:
    reachable = invoke(sqlite_url, "info", redis_url=redis_url)
    assert reachable.exit_code == 0, reachable.output
    assert f"redis         {redis_url} reachable\n" in reachable.stdout

    nobody = "redis://:" + SECRET + "@127.0.0.1:1/0"
    down = invoke(sqlite_url, "info", redis_url=nobody, db_timeout="1")
    assert "redis         redis://:***@127.0.0.1:1/0 unreachable (ConnectionError)\n" in down.stdout
    assert_one_line_error(down, "a store does not answer")
    assert SECRET not in down.output

    missing = invoke("postgresql://postgres:" + SECRET + "@127.0.0.1:1/nothing", "info", db_timeout="1")
    assert "database      postgresql://postgres:***@127.0.0.1:1/nothing: unreachable (" in missing.stdout
    assert missing.exit_code == 1 and SECRET not in missing.output


def test_config_check_prints_every_setting_with_secrets_masked(sqlite_url: str) -> None:
    result = invoke(
        sqlite_url,
        "config",
        "check",
        pepper=SECRET,
        smtp_password=SECRET,
        hash_worker="3",
        audit_retention="P30D",
    )
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[:-1]}
    assert set(rows) == {f"DOORWARD_{name.upper()}" for name in Settings.model_fields}
    assert rows["DOORWARD_PEPPER"].split()[1:] == ["**********", "[set]"]
    assert rows["DOORWARD_SMTP_PASSWORD"].split()[1:] == ["**********", "[set]"]
    assert rows["DOORWARD_AUDIT_RETENTION"].split()[1:] == [
        "2592000",
        "s",
        "(30",
        "days,",
        "0:00:00)",
        "[set]",
    ]
    assert rows["DOORWARD_SESSION_LIFETIME"].endswith("[default]")
    assert result.stdout.splitlines()[-1] == "settings are valid; 1 unknown name(s) ignored"
    assert human_lines(result.stderr) == [
        "unknown: DOORWARD_HASH_WORKER is not a doorward setting and is ignored "
        "(did you mean DOORWARD_HASH_WORKERS?)"
    ]
    assert SECRET not in result.output


def test_config_check_names_every_invalid_setting_and_exits_1(sqlite_url: str) -> None:
    result = invoke(sqlite_url, "config", "check", pepper="short-" + SECRET[:10], db_timeout="-1")
    assert result.exit_code == 1
    assert human_lines(result.stderr) == [
        "invalid: DOORWARD_DB_TIMEOUT: Input should be greater than 0",
        "invalid: DOORWARD_PEPPER: Value error, pepper must be at least 32 characters (e.g. 64 hex digits)",
    ]
    assert SECRET[:10] not in result.output


def test_a_password_in_the_query_string_is_masked_too(sqlite_url: str) -> None:
    """Both drivers take ``?password=``: config check and info must hide it there as well."""
    result = invoke(
        sqlite_url, "config", "check", redis_url=f"redis://127.0.0.1:1/0?password={SECRET}&socket_timeout=1"
    )
    assert SECRET not in result.output
    assert "password=***" in result.stdout
    missing = invoke(f"postgresql://postgres@127.0.0.1:1/nothing?password={SECRET}", "info", db_timeout="1")
    assert missing.exit_code == 1 and SECRET not in missing.output
