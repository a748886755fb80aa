"""The ``doorward`` command, driven in-process through typer's CliRunner against real SQLite files.

Every effect is checked the way a user would see it: the command's exit code and output, the rows in
the database, and what the HTTP API (in-process, same database) then answers.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import argon2
import bcrypt
import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from doorward.cli import app as cli
from doorward.core.clock import utc_now
from tests.conftest import EMAIL, PASSWORD, bearer, make_settings, running
from tests.db import fetch_sync, table_names

T = TypeVar("T")

runner = CliRunner()

WRAPPED_PREFIX = "$doorward-sha256-hmac$"
BARE_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- helpers -------------------------------------------------------------------------------------


def invoke(database_url: str, /, *args: str, input: str | None = None, **env: str) -> Result:
    """Run ``doorward *args`` with this database and the testing hash profile (``env`` overrides)."""
    environment = {"DOORWARD_DATABASE_URL": database_url, "DOORWARD_HASH_PROFILE": "testing"}
    environment.update({f"DOORWARD_{name.upper()}": value for name, value in env.items()})
    # The CLI points the root logger at the stderr of the moment, which is CliRunner's and is closed
    # afterwards: put logging back as it was, so later log records do not go to a closed stream.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return runner.invoke(cli, list(args), env=environment, input=input)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def human_lines(stream: str) -> list[str]:
    """The lines of ``stream`` meant for a person: everything but the JSON log records."""
    lines = []
    for line in stream.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            lines.append(line)
    return lines


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """A non-zero exit with exactly one human-readable ``error: ...`` line containing ``fragments``."""
    assert result.exit_code != 0, result.output
    lines = human_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    return fetch_sync(database_url, sql)


def stored_hashes(database_url: str) -> dict[str, str]:
    rows = query(database_url, "SELECT email, password_hash FROM users")
    return {str(email): str(password_hash) for email, password_hash in rows}


def user_count(database_url: str) -> int:
    ((count,),) = query(database_url, "SELECT count(*) FROM users")
    return int(str(count))


def api(database_url: str, action: Callable[[httpx.AsyncClient], Awaitable[T]], **settings: object) -> T:
    """Run ``action`` against the real app (in-process, started and stopped) on this database."""

    async def main() -> T:
        # The real clock: the CLI, run alongside, knows no other.
        async with running(make_settings(database_url, **settings), utc_now) as (_, client):
            return await action(client)

    return asyncio.run(main())


def api_login(database_url: str, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    async def action(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/login", json={"email": email, "password": password})

    return api(database_url, action)


def api_token(database_url: str, email: str = EMAIL, password: str = PASSWORD) -> str:
    response = api_login(database_url, email, password)
    assert response.status_code == 200, response.text
    return str(response.json()["sessionToken"])


def api_session(database_url: str, token: str) -> httpx.Response:
    async def action(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/session", headers=bearer(token))

    return api(database_url, action)


def add_user(database_url: str, email: str = EMAIL, password: str = PASSWORD) -> Result:
    result = invoke(database_url, "users", "add", email, "--password-stdin", input=password + "\n")
    assert result.exit_code == 0, result.output
    return result


def write_csv(
    path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("email", "password_hash")
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def django_pbkdf2(password: str, salt: str = "s4ltS4lt", iterations: int = 1000) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


# One imported account per hash format, each with its own password.
LEGACY = {
    "sha256@example.com": "legacy sha256 passphrase one",
    "bcrypt@example.com": "legacy bcrypt passphrase two",
    "django@example.com": "legacy django passphrase three",
    "argon2@example.com": "legacy argon2 passphrase four",
}


def legacy_rows() -> list[tuple[str, str]]:
    pw = LEGACY
    return [
        ("sha256@example.com", hashlib.sha256(pw["sha256@example.com"].encode()).hexdigest()),
        (
            "bcrypt@example.com",
            bcrypt.hashpw(pw["bcrypt@example.com"].encode(), bcrypt.gensalt(rounds=4)).decode(),
        ),
        ("django@example.com", django_pbkdf2(pw["django@example.com"])),
        (
            "argon2@example.com",
            argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(pw["argon2@example.com"]),
        ),
    ]


# --- migrate -------------------------------------------------------------------------------------


def test_migrate_creates_the_schema_on_a_fresh_file_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    first = invoke(url, "migrate")
    assert first.exit_code == 0, first.output
    assert "database schema is up to date" in first.stdout
    tables = table_names(url)
    assert {"users", "sessions", "secrets", "alembic_version"} <= tables
    version = query(url, "SELECT version_num FROM alembic_version")
    assert len(version) == 1

    second = invoke(url, "migrate")
    assert second.exit_code == 0, second.output
    assert "database schema is up to date" in second.stdout
    assert query(url, "SELECT version_num FROM alembic_version") == version

    # The schema is usable: an account can be created and used on it.
    add_user(url)
    assert api_login(url).status_code == 200


def test_migrate_against_an_unreachable_database_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke(f"postgresql://doorward@127.0.0.1:{port}/doorward", "migrate")
    assert_one_line_error(result, "migration failed")


def test_migrate_on_a_file_that_is_not_a_database_fails_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_text("this is not an SQLite database\n")
    result = invoke(f"sqlite:///{path}", "migrate")
    assert_one_line_error(result, "migration failed", "not a database")


# --- users add -----------------------------------------------------------------------------------


def test_users_add_creates_an_account_that_can_log_in(database_url: str) -> None:
    result = add_user(database_url)
    assert re.fullmatch(rf"added user \d+ <{re.escape(EMAIL)}>\n", result.stdout), result.stdout
    assert PASSWORD not in result.output

    response = api_login(database_url)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == EMAIL
    assert stored_hashes(database_url)[EMAIL].startswith("$argon2id$")


def test_users_add_accepts_a_crlf_terminated_password(database_url: str) -> None:
    result = invoke(database_url, "users", "add", EMAIL, "--password-stdin", input=PASSWORD + "\r\n")
    assert result.exit_code == 0, result.output
    assert api_login(database_url).status_code == 200


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short but ok", "at least 15 characters"),
        ("", "at least 15 characters"),
        ("password1234567", "too common"),
        ("aaaaaaaaaaaaaaaaaaaa", "too common"),
        ("ada@example.com!!!", "must not contain your email"),
        ("doorwarddoorward", "name of this service"),
    ],
)
def test_users_add_refuses_a_weak_password_with_the_rule(database_url: str, password: str, rule: str) -> None:
    result = invoke(database_url, "users", "add", EMAIL, "--password-stdin", input=password + "\n")
    assert_one_line_error(result, rule)
    if password:
        assert password not in result.output
    assert user_count(database_url) == 0


def test_users_add_without_password_stdin_fails(database_url: str) -> None:
    result = invoke(database_url, "users", "add", EMAIL, input=PASSWORD + "\n")
    assert_one_line_error(result, "--password-stdin")
    assert PASSWORD not in result.output
    assert user_count(database_url) == 0


@pytest.mark.parametrize("second_email", [EMAIL, EMAIL.upper(), f"  {EMAIL}  "])
def test_users_add_refuses_a_duplicate_email(database_url: str, second_email: str) -> None:
    add_user(database_url)
    result = invoke(
        database_url, "users", "add", second_email, "--password-stdin", input="another long passphrase\n"
    )
    assert_one_line_error(result, "already exists")
    assert "another long passphrase" not in result.output
    assert user_count(database_url) == 1
    # The original account still has its own password.
    assert api_login(database_url).status_code == 200


def test_users_add_refuses_an_invalid_email(database_url: str) -> None:
    result = invoke(database_url, "users", "add", "not-an-email", "--password-stdin", input=PASSWORD + "\n")
    assert_one_line_error(result, "Email address is not valid")
    assert user_count(database_url) == 0


# --- users import --------------------------------------------------------------------------------


def test_import_every_hash_format_then_log_in_and_upgrade(database_url: str, tmp_path: Path) -> None:
    rows = legacy_rows()
    original = dict(rows)
    result = invoke(database_url, "users", "import", str(write_csv(tmp_path / "users.csv", rows)))
    assert result.exit_code == 0, result.output
    assert "imported 4, skipped 0" in result.stdout

    stored = stored_hashes(database_url)
    assert set(stored) == set(LEGACY)
    # The unsalted SHA-256 digest is never stored as it is.
    assert not [h for h in stored.values() if BARE_SHA256.match(h)], stored
    assert stored["sha256@example.com"].startswith(WRAPPED_PREFIX)
    # The other formats are kept verbatim until the first login.
    for email in ("bcrypt@example.com", "django@example.com", "argon2@example.com"):
        assert stored[email] == original[email]

    for email, password in LEGACY.items():
        wrong = api_login(database_url, email, password + "x")
        assert wrong.status_code == 401, (email, wrong.text)
        response = api_login(database_url, email, password)
        assert response.status_code == 200, (email, response.text)
        assert response.json()["user"]["email"] == email

    upgraded = stored_hashes(database_url)
    for email, password in LEGACY.items():
        assert upgraded[email].startswith("$argon2id$"), (email, upgraded[email])
        assert upgraded[email] != stored[email], email
        # ... and the upgraded hash still accepts the same password.
        assert api_login(database_url, email, password).status_code == 200, email


def test_import_accepts_uppercase_sha256_hex(database_url: str, tmp_path: Path) -> None:
    password = "an uppercase hex digest"
    digest = hashlib.sha256(password.encode()).hexdigest().upper()
    path = write_csv(tmp_path / "users.csv", [("upper@example.com", digest)])
    result = invoke(database_url, "users", "import", str(path))
    assert result.exit_code == 0, result.output
    assert stored_hashes(database_url)["upper@example.com"].startswith(WRAPPED_PREFIX)
    assert api_login(database_url, "upper@example.com", password).status_code == 200


BAD_LINES = {
    "unrecognised hash": (("bad-hash@example.com", "md5:0123456789abcdef"), "Unrecognised password hash"),
    "invalid email": (("not an email", hashlib.sha256(b"x").hexdigest()), "Email address is not valid"),
    "duplicate in file": (("Sha256@Example.com", hashlib.sha256(b"y").hexdigest()), "Duplicate email"),
    "already in database": ((EMAIL, hashlib.sha256(b"z").hexdigest()), "already exists"),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_import_is_all_or_nothing(database_url: str, tmp_path: Path, kind: str) -> None:
    add_user(database_url)
    bad_row, reason = BAD_LINES[kind]
    rows = [*legacy_rows()[:2], bad_row, *legacy_rows()[2:]]  # the bad one is on line 4
    result = invoke(database_url, "users", "import", str(write_csv(tmp_path / "users.csv", rows)))

    assert result.exit_code != 0, result.output
    lines = human_lines(result.stderr)
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("line 4: "), lines
    assert reason in lines[0], lines
    assert lines[1].startswith("error: "), lines
    assert "nothing imported" in lines[1], lines
    assert set(stored_hashes(database_url)) == {EMAIL}


def every_bad_line() -> list[tuple[str, str]]:
    good = legacy_rows()
    return [
        good[0],  # line 2
        BAD_LINES["unrecognised hash"][0],  # line 3
        good[1],  # line 4
        BAD_LINES["invalid email"][0],  # line 5
        BAD_LINES["duplicate in file"][0],  # line 6
        BAD_LINES["already in database"][0],  # line 7
        ("", ""),  # line 8: empty fields
    ]


EXPECTED_BAD = {
    3: "Unrecognised password hash",
    5: "Email address is not valid",
    6: "Duplicate email",
    7: "already exists",
    8: "Email address is not valid",
}


def assert_reports_every_bad_line(result: Result) -> None:
    reported = {}
    for line in human_lines(result.stderr):
        match = re.fullmatch(r"line (\d+): skipped: (.+)", line)
        if match:
            reported[int(match.group(1))] = match.group(2)
    assert set(reported) == set(EXPECTED_BAD), result.stderr
    for number, reason in EXPECTED_BAD.items():
        assert reason in reported[number], (number, reported[number])


def test_import_reports_every_bad_line_and_imports_nothing(database_url: str, tmp_path: Path) -> None:
    add_user(database_url)
    path = write_csv(tmp_path / "users.csv", every_bad_line())
    result = invoke(database_url, "users", "import", str(path))

    assert result.exit_code != 0, result.output
    assert_reports_every_bad_line(result)
    errors = [line for line in human_lines(result.stderr) if line.startswith("error: ")]
    assert errors == ["error: 5 line(s) refused; nothing imported"], result.stderr
    assert set(stored_hashes(database_url)) == {EMAIL}


def test_import_skip_invalid_imports_the_good_lines(database_url: str, tmp_path: Path) -> None:
    add_user(database_url)
    path = write_csv(tmp_path / "users.csv", every_bad_line())
    result = invoke(database_url, "users", "import", "--skip-invalid", str(path))

    assert result.exit_code == 0, result.output
    assert "imported 2, skipped 5" in result.stdout
    assert_reports_every_bad_line(result)
    assert set(stored_hashes(database_url)) == {EMAIL, "sha256@example.com", "bcrypt@example.com"}
    for email in ("sha256@example.com", "bcrypt@example.com"):
        assert api_login(database_url, email, LEGACY[email]).status_code == 200, email
    # The account that was already there keeps its own password, not the file's hash.
    assert api_login(database_url).status_code == 200


@pytest.mark.parametrize("header", [("mail", "password_hash"), ("email", "hash"), ("email", "password")])
def test_import_refuses_a_wrong_header(database_url: str, tmp_path: Path, header: tuple[str, str]) -> None:
    path = write_csv(tmp_path / "users.csv", legacy_rows(), header=header)
    result = invoke(database_url, "users", "import", str(path))
    assert_one_line_error(result, "email,password_hash")
    assert user_count(database_url) == 0


def test_import_refuses_an_empty_file(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = invoke(database_url, "users", "import", str(path))
    assert_one_line_error(result, "email,password_hash")


def test_import_refuses_a_file_that_is_not_utf8(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,password_hash\nj\xf6rg@example.com,abc\n".encode("latin-1"))
    result = invoke(database_url, "users", "import", str(path))
    assert_one_line_error(result, "UTF-8")
    assert user_count(database_url) == 0


# --- users disable / sessions revoke -------------------------------------------------------------


def test_users_disable_ends_sessions_and_refuses_login(database_url: str) -> None:
    add_user(database_url)
    token = api_token(database_url)
    assert api_session(database_url, token).status_code == 200

    result = invoke(database_url, "users", "disable", EMAIL)
    assert result.exit_code == 0, result.output
    assert f"disabled {EMAIL}; ended 1 session(s)" in result.stdout

    refused = api_session(database_url, token)
    assert refused.status_code == 401
    assert refused.json() == {"success": False, "error": "Invalid session", "code": "invalid_session"}
    assert query(database_url, "SELECT count(*) FROM sessions") == [(0,)]

    login = api_login(database_url)
    assert login.status_code == 401
    assert login.json() == {"success": False, "error": "Invalid credentials"}


def test_sessions_revoke_ends_sessions_but_login_still_works(database_url: str) -> None:
    add_user(database_url)
    tokens = [api_token(database_url), api_token(database_url)]

    result = invoke(database_url, "sessions", "revoke", EMAIL.upper())
    assert result.exit_code == 0, result.output
    assert "ended 2 session(s)" in result.stdout

    for token in tokens:
        assert api_session(database_url, token).status_code == 401
    fresh = api_token(database_url)
    assert api_session(database_url, fresh).status_code == 200


def test_sessions_revoke_leaves_other_users_alone(database_url: str) -> None:
    add_user(database_url)
    add_user(database_url, "grace@example.com", "another long passphrase")
    mine = api_token(database_url)
    theirs = api_token(database_url, "grace@example.com", "another long passphrase")

    assert invoke(database_url, "sessions", "revoke", EMAIL).exit_code == 0
    assert api_session(database_url, mine).status_code == 401
    assert api_session(database_url, theirs).status_code == 200


@pytest.mark.parametrize("command", [("users", "disable"), ("sessions", "revoke")])
def test_admin_commands_refuse_an_unknown_email(database_url: str, command: tuple[str, str]) -> None:
    add_user(database_url)
    result = invoke(database_url, *command, "nobody@example.com")
    assert_one_line_error(result, "No account with this email")
    # Nothing happened to the account that exists.
    assert api_login(database_url).status_code == 200


# --- settings and tune ---------------------------------------------------------------------------


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
        ("hash_socket", "/tmp/no-such-doorward-socket"),  # noqa: S108 (a path that must not exist)
    ],
)
@pytest.mark.parametrize("command", [("migrate",), ("users", "disable", EMAIL)])
def test_a_bad_setting_fails_with_one_line_naming_the_variable(
    database_url: str, variable: str, value: str, command: tuple[str, ...]
) -> None:
    result = invoke(database_url, *command, **{variable: value})
    assert_one_line_error(result, f"DOORWARD_{variable.upper()}")


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


# --- users unlock --------------------------------------------------------------------------------


def test_users_unlock_lifts_a_lockout(database_url: str) -> None:
    add_user(database_url)
    locked = {"throttle_lockout_failures": 3, "throttle_free_failures": 10}

    def login_status(password: str) -> int:
        async def action(client: httpx.AsyncClient) -> int:
            response = await client.post("/login", json={"email": EMAIL, "password": password})
            return response.status_code

        return api(database_url, action, **locked)

    assert [login_status("wrong password!") for _ in range(3)] == [401, 401, 401]
    assert login_status(PASSWORD) == 429  # locked: even the right password waits
    result = invoke(database_url, "users", "unlock", EMAIL)
    assert result.exit_code == 0, result.output
    assert login_status(PASSWORD) == 200
    assert_one_line_error(invoke(database_url, "users", "unlock", "nobody@example.com"), "No account")


# --- prune ---------------------------------------------------------------------------------------


def test_prune_deletes_what_has_expired_and_keeps_what_has_not(database_url: str) -> None:
    add_user(database_url)
    api_token(database_url)  # a live session
    fetch_sync(
        database_url,
        "INSERT INTO sessions (id, user_id, token_digest, created_at, last_seen_at, expires_at) "
        "SELECT 'old', id, :digest, created_at, created_at, created_at FROM users",
        digest=b"o" * 32,
    )
    fetch_sync(
        database_url,
        "INSERT INTO rate_windows (key, window_start, count) "
        "VALUES ('login-failures:x', '2020-01-01 00:00:00', 3)",
    )
    fetch_sync(
        database_url,
        "INSERT INTO mfa_challenges (digest, user_id, created_at, expires_at) "
        "SELECT :digest, id, created_at, created_at FROM users",
        digest=b"m" * 32,
    )
    result = invoke(database_url, "prune")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "sessions: 1, tokens: 0, throttle entries: 1, mfa challenges: 1"
    assert query(database_url, "SELECT count(*) FROM sessions") == [(1,)]
    assert query(database_url, "SELECT count(*) FROM rate_windows") == [(0,)]
