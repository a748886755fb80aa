"""Bad settings stop any command with one line naming the variable; ``doorward tune`` prints a profile."""

from __future__ import annotations

import re

import pytest

from doorward.cli import app as cli
from tests.cli.conftest import assert_one_line_error, invoke, runner
from tests.conftest import EMAIL, make_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("hash_profile", "nope"),
        ("database_url", "mysql://x"),
        ("database_url", "sqlite:///:memory:"),
        ("hash_workers", "0"),
        ("db_timeout", "soon"),
        ("throttle_client_window", "0"),
        ("session_lifetime", "-PT5M"),
        ("log_level", "LOUD"),
        ("public_url", "id.example.com"),
        ("hsts_max_age", "-1"),
        ("hash_socket", "/tmp/no-such-doorward-socket"),  # noqa: S108 (a path that must not exist)
        ("webauthn_rp_id", "https://example.com"),
        ("webauthn_origins", "https://id.example.com/login"),
        ("db_pooler", "session"),
    ],
)
@pytest.mark.parametrize("command", [("migrate",), ("users", "disable", EMAIL)])
def test_a_bad_setting_fails_with_one_line_naming_the_variable(
    database_url: str, variable: str, value: str, command: tuple[str, ...]
) -> None:
    result = invoke(database_url, *command, **{variable: value})
    assert_one_line_error(result, f"DOORWARD_{variable.upper()}")


def test_passkeys_default_to_the_public_url_and_refuse_an_origin_off_the_rp_id(database_url: str) -> None:
    defaults = make_settings(database_url, public_url="https://id.example.com:8443/")
    assert (defaults.rp_id, defaults.webauthn_origin_list) == (
        "id.example.com",
        ["https://id.example.com:8443"],
    )
    assert make_settings(database_url, public_url="https://id.example.com:443").webauthn_origin_list == [
        "https://id.example.com"  # as a browser writes the origin: no default port
    ]
    frontend = make_settings(
        database_url,
        public_url="https://id.example.com",
        webauthn_rp_id=" Example.com ",
        webauthn_origins="https://app.example.com, https://example.com",
    )
    assert frontend.rp_id == "example.com"
    assert frontend.webauthn_origin_list == ["https://app.example.com", "https://example.com"]

    result = invoke(database_url, "migrate", webauthn_rp_id="example.org")  # the public URL is not on it
    assert_one_line_error(result, "DOORWARD_WEBAUTHN_ORIGINS")
    assert "example.org" in result.output


def test_a_pooler_in_front_of_sqlite_is_refused(sqlite_url: str) -> None:
    result = invoke(sqlite_url, "migrate", db_pooler="transaction")
    assert_one_line_error(result, "DOORWARD_DB_POOLER")
    assert "PostgreSQL" in result.output


def test_a_bad_pepper_is_named_but_never_printed(database_url: str) -> None:
    pepper = "too-short-secret-xyz"
    result = invoke(database_url, "users", "disable", EMAIL, pepper=pepper)
    assert_one_line_error(result, "DOORWARD_PEPPER")
    assert pepper not in result.output


def test_tune_prints_a_profile_line() -> None:
    result = runner.invoke(cli, ["tune", "--target-ms", "1", "--memory-kib", "8"])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert re.fullmatch(r"argon2id m=8 KiB t=\d+ p=1: \d+\.\d ms per hash", first), first
