"""The benchmark's data: real argon2id hashes, and users and sessions bulk-loaded straight into SQL.

User ``j`` (id ``j + 1``) is ``u<j>@bench.example``; its hash is real hash ``j mod R``, the hash of
``password(j mod R)``, so every account can log in and wrong passwords can go to any account.
Sessions point at random users; a few are given tokens we keep (for wrk), the rest random digests.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import random
import secrets
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from launch import doorward_command, doorward_env

from doorward.core.emails import canonical_email
from doorward.core.password_hashes import PasswordHasher
from doorward.core.passwords import Password
from doorward.core.profiles import PROFILES

SESSION_LIFETIME = timedelta(hours=24)  # doorward's default DOORWARD_SESSION_LIFETIME
CHUNK = 50_000


def email(j: int) -> str:
    return f"u{j}@bench.example"


def password(k: int, kind: str = "right") -> str:
    """The password of real hash ``k`` (``kind`` "wrong" gives one that fails). Same as login.lua."""
    return f"bench-password-{k}-{kind}-horse"


def _hash_one(args: tuple[str, int]) -> str:
    profile, k = args
    return _hasher(profile).hash(Password(password(k)))


_HASHERS: dict[str, PasswordHasher] = {}


def _hasher(profile: str) -> PasswordHasher:
    if profile not in _HASHERS:
        _HASHERS[profile] = PasswordHasher(PROFILES[profile], key=b"unused: no imported hashes here")
    return _HASHERS[profile]


def real_hashes(count: int, profile: str, processes: int) -> list[str]:
    """``count`` real hashes made by doorward's own hasher: ``hashes[k]`` is the hash of password(k)."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return pool.map(_hash_one, [(profile, k) for k in range(count)], chunksize=16)


def new_token() -> tuple[str, bytes]:
    """A session token as doorward makes it, and the digest doorward stores."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode("ascii")).digest()


@dataclass
class Stage:
    """The rows of one growth step: users and sessions ``[start, stop)``, and the tokens we keep."""

    start: int
    stop: int
    tokens: list[str] = field(default_factory=list)


def user_rows(start: int, stop: int, hashes: list[str]) -> Iterator[tuple[int, str, str, str]]:
    for j in range(start, stop):
        yield j + 1, email(j), canonical_email(email(j)), hashes[j % len(hashes)]


def session_rows(
    start: int, stop: int, users: int, known: int, rng: random.Random
) -> tuple[list[str], Iterator[tuple[str, int, bytes]]]:
    """Sessions ``[start, stop)`` of random users among ``users``; ``known`` of them (spread through the
    range) get tokens that are returned. Yields (id, user_id, digest)."""
    count = stop - start
    known_at = set(rng.sample(range(count), min(known, count)))
    tokens: list[str] = []
    for _ in known_at:
        tokens.append(new_token()[0])
    token_iter = iter(tokens)

    def rows() -> Iterator[tuple[str, int, bytes]]:
        for n in range(count):
            digest = (
                hashlib.sha256(next(token_iter).encode("ascii")).digest() if n in known_at else os.urandom(32)
            )
            yield secrets.token_urlsafe(16), rng.randint(1, users), digest

    return tokens, rows()


def chunks(rows: Iterator[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Database(Protocol):
    name: str
    url: str

    def migrate(self) -> None: ...

    def load(self, stage: Stage, hashes: list[str], known: int, rng: random.Random) -> None: ...

    def drop(self) -> None: ...


def migrate(url: str) -> None:
    """``doorward migrate`` on ``url``, as an operator would run it."""
    done = subprocess.run(
        [*doorward_command(), "migrate"],
        env=doorward_env(url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"doorward migrate failed: {done.stderr.strip().splitlines()[-1:]}")


class SqliteDatabase:
    """A SQLite file in the run's scratch directory."""

    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.path = directory / "bench.db"
        self.url = f"sqlite:///{self.path}"

    def migrate(self) -> None:
        migrate(self.url)

    def load(self, stage: Stage, hashes: list[str], known: int, rng: random.Random) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        # SQLAlchemy's SQLite DATETIME text form, which doorward's UTCDateTime reads back as UTC.
        at = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        expires = (now + SESSION_LIFETIME).strftime("%Y-%m-%d %H:%M:%S.%f")
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")
            for batch in chunks(user_rows(stage.start, stage.stop, hashes)):
                conn.executemany(
                    "INSERT INTO users (id, email, email_canonical, password_hash, disabled, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
                    [(*row, at, at) for row in batch],
                )
            tokens, rows = session_rows(stage.start, stage.stop, stage.stop, known, rng)
            for batch in chunks(rows):
                conn.executemany(
                    "INSERT INTO sessions (id, user_id, token_digest, created_at, last_seen_at, expires_at,"
                    " client_address, user_agent) VALUES (?, ?, ?, ?, ?, ?, '127.0.0.1', 'bench')",
                    [(*row, at, at, expires) for row in batch],
                )
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        stage.tokens = tokens

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class PostgresDatabase:
    """A throw-away database on a PostgreSQL server, created here and dropped by ``drop``."""

    name = "postgresql"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.database = f"doorward_bench_{uuid.uuid4().hex[:10]}"
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.database}"
        self._created = False

    @staticmethod
    def available(admin_url: str) -> str | None:
        """None when the server answers, else why not."""

        async def probe() -> None:
            import asyncpg

            conn = await asyncpg.connect(_dsn(admin_url), timeout=3)
            await conn.close()

        try:
            asyncio.run(probe())
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def _admin(self, statement: str) -> None:
        async def run() -> None:
            import asyncpg

            conn = await asyncpg.connect(_dsn(self.admin_url), timeout=10)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())

    def migrate(self) -> None:
        self._admin(f'CREATE DATABASE "{self.database}"')
        self._created = True
        migrate(self.url)

    def load(self, stage: Stage, hashes: list[str], known: int, rng: random.Random) -> None:
        stage.tokens = asyncio.run(self._load(stage, hashes, known, rng))

    async def _load(self, stage: Stage, hashes: list[str], known: int, rng: random.Random) -> list[str]:
        import asyncpg

        now = datetime.now(UTC)
        conn = await asyncpg.connect(_dsn(self.url), timeout=10)
        try:
            async with conn.transaction():
                for batch in chunks(user_rows(stage.start, stage.stop, hashes)):
                    await conn.copy_records_to_table(
                        "users",
                        records=[(*row, False, now, now) for row in batch],
                        columns=[
                            "id",
                            "email",
                            "email_canonical",
                            "password_hash",
                            "disabled",
                            "created_at",
                            "updated_at",
                        ],
                    )
                await conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users")
                tokens, rows = session_rows(stage.start, stage.stop, stage.stop, known, rng)
                expires = now + SESSION_LIFETIME
                for batch in chunks(rows):
                    await conn.copy_records_to_table(
                        "sessions",
                        records=[(*row, now, now, expires, "127.0.0.1", "bench") for row in batch],
                        columns=[
                            "id",
                            "user_id",
                            "token_digest",
                            "created_at",
                            "last_seen_at",
                            "expires_at",
                            "client_address",
                            "user_agent",
                        ],
                    )
            # What autovacuum would do on its own a little later: done now, so it does not run
            # in the middle of a measurement.
            await conn.execute("VACUUM ANALYZE users")
            await conn.execute("VACUUM ANALYZE sessions")
        finally:
            await conn.close()
        return tokens

    def drop(self) -> None:
        if self._created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self._created = False


def _dsn(url: str) -> str:
    """asyncpg wants postgres:// or postgresql:// without a SQLAlchemy driver suffix."""
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest if scheme.startswith("postgres") else url
