"""``doorward sessions revoke`` and ``doorward prune``: sessions ended, expired rows deleted."""

from __future__ import annotations

from tests.cli.conftest import add_user, api_session, api_token, invoke, query
from tests.conftest import EMAIL
from tests.db import fetch_sync


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
    for digest, expires in ((b"w" * 32, "created_at"), (b"l" * 32, "'2999-01-01 00:00:00'")):
        insert = "INSERT INTO webauthn_challenges (digest, purpose, created_at, expires_at) "
        select = f"SELECT :digest, 'login', created_at, {expires} FROM users"  # noqa: S608
        fetch_sync(database_url, insert + select, digest=digest)  # passkey challenges: one expired, one not
    result = invoke(database_url, "prune")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "sessions: 1, tokens: 0, throttle entries: 1, mfa challenges: 1, webauthn challenges: 1, "
        "known devices: 0, audit events: 0"
    )
    assert query(database_url, "SELECT count(*) FROM sessions") == [(1,)]
    # The finished window goes; the login's own (reserved and taken back: 0) waits for its end.
    assert query(database_url, "SELECT key, count FROM rate_windows") == [("login-failures:127.0.0.1", 0)]
    assert query(database_url, "SELECT count(*) FROM webauthn_challenges") == [(1,)]
