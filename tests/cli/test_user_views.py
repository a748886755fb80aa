"""``doorward users list | show | enable | delete | reset-password``, on both databases, and what the
API then answers for the account."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from doorward.storage.tables import metadata
from tests.cli.conftest import (
    add_user,
    api,
    api_login,
    api_token,
    assert_one_line_error,
    human_lines,
    invoke,
    query,
    user_count,
)
from tests.conftest import EMAIL, PASSWORD

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def test_users_list_shows_every_account_or_those_with_a_prefix(database_url: str) -> None:
    for email in ("Ada@Example.com", "adam@example.com", "grace@example.com"):
        add_user(database_url, email)
    invoke(database_url, "users", "disable", "grace@example.com")

    result = invoke(database_url, "users", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["1", "Ada@Example.com"],
        ["2", "adam@example.com"],
        ["3", "grace@example.com"],
    ]
    assert lines[2].endswith("(disabled)") and "disabled" not in lines[0]

    listed = invoke(database_url, "users", "list", "--query", " ADA", "--json")
    assert listed.exit_code == 0, listed.output
    users = json.loads(listed.stdout)
    assert [(u["id"], u["email"], u["verified"], u["disabled"]) for u in users] == [
        (1, "Ada@Example.com", True, False),
        (2, "adam@example.com", True, False),
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", users[0]["createdAt"])

    none = invoke(database_url, "users", "list", "--query", "zed")
    assert (none.exit_code, none.stdout) == (0, "")
    assert human_lines(none.stderr) == ["no account starting with 'zed'"]


def test_users_list_reads_past_one_page(sqlite_url: str) -> None:
    rows = ", ".join(
        f"('u{n}@example.com', 'u{n}@example.com', 'x', false, '2026-01-01', '2026-01-01')"
        for n in range(450)
    )
    columns = "email, email_canonical, password_hash, disabled, created_at, updated_at"
    query(sqlite_url, f"INSERT INTO users ({columns}) VALUES {rows}")  # noqa: S608 - the test's own literals
    result = invoke(sqlite_url, "users", "list", "--json")
    assert result.exit_code == 0, result.output
    assert [u["email"] for u in json.loads(result.stdout)] == [f"u{n}@example.com" for n in range(450)]


def test_users_show_tells_the_state_factors_and_sessions(database_url: str) -> None:
    add_user(database_url, "Ada@Example.com")

    async def log_in(client: httpx.AsyncClient) -> None:
        body = {"email": EMAIL, "password": PASSWORD}
        assert (await client.post("/login", json=body, headers={"User-Agent": CHROME})).status_code == 200
        wrong = {"email": EMAIL, "password": "a wrong password, twenty"}
        assert (await client.post("/login", json=wrong)).status_code == 401

    api(database_url, log_in)
    result = invoke(database_url, "users", "show", "  ADA@example.COM")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("user 1 <Ada@Example.com>\n")
    assert re.search(r"^  verified   yes, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", text, re.M)
    assert "  disabled   no\n" in text and "  locked     no (1 failed logins)\n" in text
    assert "  app        no\n  recovery   0 code(s) left\n  passkeys   0\n  sessions   1\n" in text
    assert re.search(r"^    [\w-]{22}  Chrome on Linux from ", text, re.M), text

    shown = json.loads(invoke(database_url, "users", "show", EMAIL, "--json").stdout)
    user = shown["user"]
    assert (user["id"], user["email"], user["locked"], user["failedLogins"], user["retryAt"]) == (
        1,
        "Ada@Example.com",
        False,
        1,
        None,
    )
    assert user["factors"] == {"totp": False, "recoveryCodesLeft": 0, "passkeys": 0}
    (session,) = shown["sessions"]
    assert (session["device"], session["userAgent"], session["aal"], session["amr"]) == (
        "Chrome on Linux",
        CHROME,
        1,
        ["pwd"],
    )
    assert_one_line_error(invoke(database_url, "users", "show", "nobody@example.com"), "No account")


def test_users_enable_lets_a_disabled_account_log_in_again(database_url: str) -> None:
    add_user(database_url, "Ada@Example.com")
    assert invoke(database_url, "users", "disable", EMAIL).exit_code == 0
    assert api_login(database_url).status_code == 401

    result = invoke(database_url, "users", "enable", " ADA@EXAMPLE.COM ")
    assert (result.exit_code, result.stdout) == (0, "enabled Ada@Example.com\n")
    assert api_login(database_url).status_code == 200
    assert_one_line_error(invoke(database_url, "users", "enable", "nobody@example.com"), "No account")


def test_users_delete_asks_first_and_removes_every_row(database_url: str) -> None:
    add_user(database_url, "Ada@Example.com")
    add_user(database_url, "grace@example.com")
    token = api_token(database_url)

    declined = invoke(database_url, "users", "delete", EMAIL, input="n\n")
    assert (
        "Delete Ada@Example.com (user 1) and all its sessions, factors and passkeys? [y/N]" in declined.stdout
    )
    assert_one_line_error(declined, "nothing deleted")
    assert user_count(database_url) == 2
    assert invoke(database_url, "users", "delete", EMAIL).exit_code != 0  # no answer: nothing either
    assert user_count(database_url) == 2

    confirmed = invoke(database_url, "users", "delete", EMAIL.upper(), input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.splitlines()[-1] == "deleted Ada@Example.com (user 1); ended 1 session(s)"
    assert api_login(database_url).status_code == 401
    for table in metadata.tables.values():
        if "user_id" in table.c and table.name != "audit_events":
            sql = f"SELECT count(*) FROM {table.name} WHERE user_id = 1"  # noqa: S608
            assert query(database_url, sql) == [(0,)], table.name
    assert query(database_url, "SELECT email FROM users") == [("grace@example.com",)]
    (detail,) = query(database_url, "SELECT detail FROM audit_events WHERE event = 'user.deleted'")
    assert json.loads(str(detail[0])) == {"by": "admin", "sessions_ended": 1, "passkeys_removed": 0}
    assert token

    at_once = invoke(database_url, "users", "delete", "grace@example.com", "--yes")
    assert (at_once.exit_code, at_once.stdout) == (
        0,
        "deleted grace@example.com (user 2); ended 0 session(s)\n",
    )
    assert_one_line_error(invoke(database_url, "users", "delete", EMAIL, "--yes"), "No account")


def test_users_reset_password_mails_the_link_the_user_would_get(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "Ada@Example.com")
    mail_dir = tmp_path / "mail"
    result = invoke(database_url, "users", "reset-password", EMAIL.upper(), mail_dir=str(mail_dir))
    assert (result.exit_code, result.stdout) == (0, "mailed a password reset link to Ada@Example.com\n")

    last = invoke(database_url, "mail", "last", mail_dir=str(mail_dir), public_url="https://id.example.com")
    assert last.stdout.startswith("To: Ada@Example.com\nSubject: Reset your password\n"), last.stdout
    (token,) = re.findall(r"/password/reset\?token=([A-Za-z0-9_-]{43})$", last.stdout, re.M)

    async def reset(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            "/password/reset/confirm", json={"token": token, "newPassword": "another long passphrase"}
        )

    assert api(database_url, reset).status_code == 200
    assert api_login(database_url, EMAIL, "another long passphrase").status_code == 200

    invoke(database_url, "users", "disable", EMAIL)
    assert_one_line_error(
        invoke(database_url, "users", "reset-password", EMAIL, mail_dir=str(mail_dir)), "disabled"
    )
