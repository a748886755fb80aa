"""Migrations as operators run them: from several processes at once, on either database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

from alembic.script import ScriptDirectory

from doorward.storage import downgrade, upgrade
from doorward.storage.migrate import alembic_config
from tests.db import fetch_sync, head_revision, schema_tables, table_names


def test_instances_starting_together_migrate_once(empty_database_url: str) -> None:
    env = {**os.environ, "DOORWARD_DATABASE_URL": empty_database_url, "DOORWARD_HASH_PROFILE": "testing"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "doorward", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    for code, out, err in outcomes:
        assert code == 0, err
        assert "database schema is up to date" in out
    assert table_names(empty_database_url) == schema_tables()
    assert fetch_sync(empty_database_url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_every_revision_goes_up_and_down(empty_database_url: str) -> None:
    """Each step on its own: up, down again (back to exactly what was before), and up for the next."""
    script = ScriptDirectory.from_config(alembic_config(empty_database_url))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions[-1] == head_revision()

    def tables() -> set[str]:
        return table_names(empty_database_url) - {"alembic_version"}

    before = tables()
    for revision in revisions:
        upgrade(empty_database_url, revision)
        after = tables()
        downgrade(empty_database_url, "-1")
        assert tables() == before, f"{revision} down left {tables()}"
        upgrade(empty_database_url, revision)
        assert tables() == after, f"{revision} up again made {tables()}"
        before = after
    assert table_names(empty_database_url) == schema_tables()


def test_0004_adds_the_factor_columns_with_defaults_and_removes_them_keeping_the_rows(
    empty_database_url: str,
) -> None:
    """Accounts and sessions from before multi-factor login: no factor, a password-only session."""
    upgrade(empty_database_url, "0003")
    sqlite = empty_database_url.startswith("sqlite")
    fetch_sync(
        empty_database_url,
        "INSERT INTO users (id, email, email_canonical, password_hash, disabled, created_at, updated_at) "
        "VALUES (1, 'a@example.com', 'a@example.com', 'h', false, :at, :at)",
        at="2026-01-01 00:00:00" if sqlite else datetime(2026, 1, 1, tzinfo=UTC),
    )
    fetch_sync(
        empty_database_url,
        "INSERT INTO sessions (id, user_id, token_digest, created_at, last_seen_at, expires_at) "
        "VALUES ('s', 1, :digest, '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-02 00:00:00')",
        digest=b"d" * 32,
    )
    upgrade(empty_database_url, "0004")
    assert {"totp_factors", "recovery_codes", "mfa_challenges"} <= table_names(empty_database_url)
    assert fetch_sync(empty_database_url, "SELECT mfa_enabled FROM users") in ([(False,)], [(0,)])
    assert fetch_sync(empty_database_url, "SELECT aal, amr FROM sessions") == [(1, "pwd")]

    downgrade(empty_database_url, "0003")
    assert not {"totp_factors", "recovery_codes", "mfa_challenges"} & table_names(empty_database_url)
    assert fetch_sync(empty_database_url, "SELECT * FROM users")[0][:2] == (1, "a@example.com")
    assert len(fetch_sync(empty_database_url, "SELECT * FROM users")[0]) == 8  # mfa_enabled gone
    assert fetch_sync(empty_database_url, "SELECT * FROM sessions")[0][:2] == ("s", 1)  # not cascaded
    assert len(fetch_sync(empty_database_url, "SELECT * FROM sessions")[0]) == 8  # aal and amr gone


def test_0005_adds_the_passkey_tables_and_the_first_factor_and_removes_them_keeping_the_rows(
    empty_database_url: str,
) -> None:
    """A sign-in waiting for its second factor across the upgrade was begun with a password."""
    upgrade(empty_database_url, "0004")
    sqlite = empty_database_url.startswith("sqlite")
    at = "2026-01-01 00:00:00" if sqlite else datetime(2026, 1, 1, tzinfo=UTC)
    fetch_sync(
        empty_database_url,
        "INSERT INTO users (id, email, email_canonical, password_hash, disabled, created_at, updated_at) "
        "VALUES (1, 'a@example.com', 'a@example.com', 'h', false, :at, :at)",
        at=at,
    )
    fetch_sync(
        empty_database_url,
        "INSERT INTO mfa_challenges (digest, user_id, created_at, expires_at) VALUES (:digest, 1, :at, :at)",
        digest=b"d" * 32,
        at=at,
    )
    upgrade(empty_database_url, "0005")
    assert {"passkeys", "webauthn_challenges"} <= table_names(empty_database_url)
    assert fetch_sync(empty_database_url, "SELECT attempts, first_factor FROM mfa_challenges") == [(0, "pwd")]

    downgrade(empty_database_url, "0004")
    assert not {"passkeys", "webauthn_challenges"} & table_names(empty_database_url)
    (row,) = fetch_sync(empty_database_url, "SELECT * FROM mfa_challenges")
    assert (bytes(row[0]), row[1], len(row)) == (b"d" * 32, 1, 6)  # first_factor gone, the row kept
