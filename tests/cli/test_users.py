"""``doorward users add | disable | unlock``, and what the API then answers for the account."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.cli.conftest import (
    add_user,
    api,
    api_login,
    api_session,
    api_token,
    assert_one_line_error,
    invoke,
    query,
    stored_hashes,
    user_count,
)
from tests.conftest import EMAIL, PASSWORD

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


# --- users disable -------------------------------------------------------------------------------


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


@pytest.mark.parametrize("command", [("users", "disable"), ("sessions", "revoke")])
def test_admin_commands_refuse_an_unknown_email(database_url: str, command: tuple[str, str]) -> None:
    add_user(database_url)
    result = invoke(database_url, *command, "nobody@example.com")
    assert_one_line_error(result, "No account with this email")
    # Nothing happened to the account that exists.
    assert api_login(database_url).status_code == 200


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
