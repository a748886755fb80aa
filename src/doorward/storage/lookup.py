"""The session check's one read, straight on the driver: the request every backend sends most.

Through SQLAlchemy's async layer this read cost ~0.8 ms of CPU on PostgreSQL and more on SQLite
(a hop to aiosqlite's thread and back, and the GIL hand-offs with it), where the database itself
answers a lookup by a unique index in tens of microseconds. So the one statement is compiled once
from the same SQLAlchemy query the repositories use (``FIND_SESSION``) and run on the driver:

- SQLite: a connection owned by the event loop's thread, queried in place. No thread hop; the
  lookup blocks the loop for about as long as a hop would have cost. It never waits: with
  ``busy_timeout=0`` the rare read SQLite would make wait (another connection recovering the WAL)
  raises ``LookupBusy`` at once, and the caller takes the pooled path, which may wait.
- PostgreSQL: a small asyncpg pool of its own, with the statement prepared once per connection.
  Having its own connections also means session checks never queue behind logins for pooled ones.

Both return what ``SqlSessions.find`` returns and turn "the database is not there" into the
core's ``StorageUnavailable``, as the rest of storage does.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Protocol

import asyncpg
from sqlalchemy.engine import URL, Dialect

from doorward.core.errors import StorageUnavailable
from doorward.core.models import Session, User
from doorward.storage.rows import FIND_SESSION, UNAVAILABLE_SQLSTATES, session_and_user


class LookupBusy(Exception):
    """SQLite would have made the lookup wait: take the pooled path instead."""


class SessionLookup(Protocol):
    """Finds a session and its user by token digest, outside any transaction."""

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None: ...

    async def close(self) -> None: ...


def _compiled(dialect: Dialect) -> str:
    compiled = FIND_SESSION.compile(dialect=dialect)
    assert list(compiled.positiontup or []) == ["digest"], "FIND_SESSION takes one parameter"
    return str(compiled)


def open_lookup(
    url: URL, dialect: Dialect, *, timeout: float, statement_timeout: float, pool_size: int
) -> SessionLookup | None:
    """The fast lookup for this database, or None where there is none (an in-memory SQLite)."""
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:" or "mode=memory" in str(url):
            return None
        return SqliteLookup(path, _compiled(dialect))
    if url.get_backend_name() == "postgresql":
        return PostgresLookup(
            url,
            _compiled(dialect),
            timeout=timeout,
            statement_timeout=statement_timeout,
            pool_size=pool_size,
        )
    return None


class SqliteLookup:
    """One connection of the event loop's own thread; see the module docstring."""

    def __init__(self, path: str, sql: str) -> None:
        self._path = path
        self._sql = sql
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA query_only=1")
            self._conn = conn
        return self._conn

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        try:
            # fetchall, not fetchone: stepping to the end ends the read, so no snapshot lingers.
            rows = self._connection().execute(self._sql, (token_digest,)).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise LookupBusy() from exc
            raise StorageUnavailable() from exc
        return session_and_user(rows[0]) if rows else None

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _ReadOnlyConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection that only ever runs FIND_SESSION: nothing to reset when it returns to the pool.

    asyncpg resets every connection on release (advisory locks, cursors, LISTEN, settings): one
    more round trip per check, for state this pool never creates.
    """

    def get_reset_query(self) -> str:
        return ""


class PostgresLookup:
    """A small asyncpg pool of its own, opened on first use; see the module docstring."""

    def __init__(
        self, url: URL, sql: str, *, timeout: float, statement_timeout: float, pool_size: int
    ) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._sql = sql
        self._timeout = timeout
        self._statement_timeout = statement_timeout
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    connection_class=_ReadOnlyConnection,
                    max_size=self._pool_size,
                    timeout=self._timeout,
                    # As the engine's: the server's statement timeout, and a client-side backstop.
                    command_timeout=self._statement_timeout + 1,
                    server_settings={"statement_timeout": str(int(self._statement_timeout * 1000))},
                )
            return self._pool

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        try:
            pool = self._pool or await self._opened()
            async with pool.acquire(timeout=self._timeout) as conn:
                row = await conn.fetchrow(self._sql, token_digest)
        except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            raise StorageUnavailable() from exc
        except asyncpg.PostgresError as exc:
            if str(exc.sqlstate or "").startswith(UNAVAILABLE_SQLSTATES):
                raise StorageUnavailable() from exc
            raise
        return session_and_user(row) if row is not None else None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
