"""The data of the second-step and passkey figures, written straight into SQL as dataset.py does:
accounts with an authenticator app (their TOTP secrets sealed as doorward seals them), accounts with a
passkey (the public half of a software authenticator's key), and mfaTokens waiting for their code.

The accounts get ids from ``FIRST_ID`` up, above any --growth size, and their own e-mail domain, so the
password-login figures (login.lua's ``u<j>@bench.example``) never meet them. What the load generator
needs to answer as a user would (the secrets, the private keys, the tokens) goes to a JSON file.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dataset
import flowload
import pyotp

from doorward.core.factor_checks import _context as totp_context  # the row a sealed secret is bound to
from doorward.core.secret_box import SecretBox
from doorward.core.tokens import new_token, token_digest

FIRST_ID = 1_000_000_000
"""The first account id of these figures: beyond every --growth size, within PostgreSQL's integer."""

PASSKEY_OFFSET = 100_000_000
"""Passkey accounts start this far above the app's."""

SECRET_KEY = "benchmark-only secret key: not for production use"
"""DOORWARD_SECRET_KEYS of the server these figures run on: the loader seals TOTP secrets with it."""

LIFETIME = timedelta(hours=2)
"""How long the loaded mfaTokens stay valid: a whole run, however long it waits for a quiet machine."""


def insert(db: dataset.Database, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows into one of ``db``'s tables, in one transaction."""
    if isinstance(db, dataset.SqliteDatabase):
        conn = sqlite3.connect(db.path, isolation_level=None, timeout=30)
        try:
            # SQLAlchemy's SQLite DATETIME text form, which doorward's UTCDateTime reads back as UTC.
            def cell(value: Any) -> Any:
                if isinstance(value, datetime):
                    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
                return value

            conn.execute("BEGIN")
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 (our names)
                [tuple(cell(v) for v in row) for row in rows],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    assert isinstance(db, dataset.PostgresDatabase)

    async def copy() -> None:
        import asyncpg

        conn = await asyncpg.connect(dataset._dsn(db.url), timeout=10)
        try:
            await conn.copy_records_to_table(table, records=rows, columns=list(columns))
        finally:
            await conn.close()

    asyncio.run(copy())


def users(first: int, count: int, hashes: list[str], domain: str, *, mfa: bool) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    return [
        (first + j, f"u{j}@{domain}", f"u{j}@{domain}", hashes[j % len(hashes)], False, now, now, mfa)
        for j in range(count)
    ]


USER_COLUMNS = (
    "id",
    "email",
    "email_canonical",
    "password_hash",
    "disabled",
    "created_at",
    "updated_at",
    "mfa_enabled",
)


def load_totp_accounts(db: dataset.Database, count: int, hashes: list[str]) -> list[str]:
    """``count`` accounts with an authenticator app turned on; their secrets, in id order."""
    insert(db, "users", USER_COLUMNS, users(FIRST_ID, count, hashes, "mfa.bench.example", mfa=True))
    box = SecretBox([SECRET_KEY.encode()])
    now = datetime.now(UTC)
    plain = [pyotp.random_base32(32) for _ in range(count)]
    rows = [
        (FIRST_ID + j, box.encrypt(secret.encode("ascii"), totp_context(FIRST_ID + j)), now, 0, now)
        for j, secret in enumerate(plain)
    ]
    insert(db, "totp_factors", ("user_id", "secret", "confirmed_at", "last_step", "created_at"), rows)
    return plain


def load_challenges(db: dataset.Database, count: int, accounts: int, first: int) -> list[tuple[str, int]]:
    """``count`` fresh mfaTokens, as a right password opens them, the ``first``-th onwards of a series
    spread over the ``accounts`` app accounts in turn; each (token, account index)."""
    now = datetime.now(UTC)
    tokens = [(new_token(), (first + n) % accounts) for n in range(count)]
    rows = [(token_digest(t), FIRST_ID + j, now, now + LIFETIME, 0, "pwd") for t, j in tokens]
    columns = ("digest", "user_id", "created_at", "expires_at", "attempts", "first_factor")
    insert(db, "mfa_challenges", columns, rows)
    return tokens


def load_passkey_accounts(
    db: dataset.Database, count: int, hashes: list[str], rp_id: str, origin: str
) -> list[dict[str, str]]:
    """``count`` accounts with a synced passkey each, made by tests/authenticator.py's software
    authenticator (it counts no signatures, as password managers' passkeys do, so concurrent sign-ins
    never race on the count); what the generator needs to answer for each (``flowload.authenticator``)."""
    first = FIRST_ID + PASSKEY_OFFSET
    insert(db, "users", USER_COLUMNS, users(first, count, hashes, "passkey.bench.example", mfa=False))
    now = datetime.now(UTC)
    rows, keys = [], []
    for j in range(count):
        auth = flowload.software_authenticator(rp_id, origin)
        auth.user_handle = secrets.token_bytes(32)
        rows.append(
            (
                secrets.token_urlsafe(16),
                first + j,
                auth.credential_id,
                auth.cose_key(),
                0,
                "internal hybrid",
                str(uuid.UUID(int=0)),
                True,
                True,
                auth.user_handle,
                "bench",
                now,
            )
        )
        keys.append(flowload.authenticator_json(auth))
    columns = (
        "id",
        "user_id",
        "credential_id",
        "public_key",
        "sign_count",
        "transports",
        "aaguid",
        "backup_eligible",
        "backed_up",
        "user_handle",
        "name",
        "created_at",
    )
    insert(db, "passkeys", columns, rows)
    return keys
