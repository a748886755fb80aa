"""The session check's one read, straight on the driver: the request every backend sends most.

SQLAlchemy's async execution costs many times what the database spends answering a lookup by a
unique index, so the one statement is compiled once from the query the repositories use
(``FIND_SESSION``) and run on sqlite3 (``SqliteLookup``) or asyncpg (``PostgresLookup``). Both
return what ``SqlSessions.find`` returns; errors.py says what their drivers' errors mean.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, Dialect

from doorward.core.errors import StorageUnavailable
from doorward.core.models import Session, User
from doorward.core.ports import SessionLookup
from doorward.storage.database import driver_options, in_memory, sqlite_connector
from doorward.storage.errors import ASYNCPG_UNAVAILABLE, sqlite_lookup_error, unavailable_sqlstate
from doorward.storage.rows import FIND_SESSION, session_and_user

LOOKUP_APPLICATION_NAME = "doorward-session-lookup"
LOGIN_APPLICATION_NAME = "doorward-login"


MMAP_BYTES = 1 << 30
"""The SQLite lookup reads the database file through a memory map of up to this size: a page the
connection's own cache does not hold is then a memory read, not a read() system call each. With a
million sessions the file outgrows that cache, and a check paid several such calls."""


def _compiled(dialect: Dialect) -> str:
    compiled = FIND_SESSION.compile(dialect=dialect)
    assert list(compiled.positiontup or []) == ["digest"], "FIND_SESSION takes one parameter"
    return str(compiled)


_ASYNCPG_CONNECT_OPTIONS = frozenset(inspect.signature(asyncpg.connect).parameters)


def _asyncpg_options(url: URL, dialect: Dialect) -> dict[str, Any]:
    """What the engine's own connections pass to ``asyncpg.connect`` for ``url``, so the lookup's
    connect as they do (host, port, user, password, database, ssl and the URL's other options).

    Only the options ``asyncpg.connect`` takes: the rest are SQLAlchemy's own (its statement cache),
    which its adapter consumes before connecting, and which ``connect`` would refuse. Read from the
    signature, not listed here, so an option SQLAlchemy adds one day cannot break every check.
    """
    _, options = dialect.create_connect_args(url)
    return {name: value for name, value in options.items() if name in _ASYNCPG_CONNECT_OPTIONS}


def open_lookup(
    url: URL,
    dialect: Dialect,
    *,
    timeout: float,
    statement_timeout: float,
    pool_size: int,
    pooler: str = "none",
) -> SessionLookup | None:
    """The fast lookup for this database, or None where there is none (an in-memory SQLite);
    ``pooler`` as the engine's (DOORWARD_DB_POOLER)."""
    if url.get_backend_name() == "sqlite":
        if in_memory(url):
            return None
        # Only ever used on the event loop's thread: sqlite3 says so if that changes.
        return SqliteLookup(sqlite_connector(url, one_thread=True), _compiled(dialect))
    if url.get_backend_name() == "postgresql":
        return PostgresLookup(
            _asyncpg_options(url, dialect),
            _compiled(dialect),
            timeout=timeout,
            statement_timeout=statement_timeout,
            pool_size=pool_size,
            pooler=pooler,
        )
    return None


def open_driver(
    url: URL,
    dialect: Dialect,
    *,
    timeout: float,
    statement_timeout: float,
    pool_size: int,
    pooler: str = "none",
) -> PostgresLookup | None:
    """PostgreSQL: connections of their own for a login's two statements (storage/login_trips.py),
    run on the driver as the session check's read is; None on another database."""
    if url.get_backend_name() != "postgresql":
        return None
    return PostgresLookup(
        _asyncpg_options(url, dialect),
        "",
        timeout=timeout,
        statement_timeout=statement_timeout,
        pool_size=pool_size,
        pooler=pooler,
        application_name=LOGIN_APPLICATION_NAME,
    )


class SqliteLookup:
    """One connection owned by the event loop's thread, queried in place, as loopsqlite.py runs
    every statement, but without SQLAlchemy's execution machinery.

    It blocks the loop briefly while its pages are in the OS's cache (a page read from disk blocks
    the loop for that read). It never waits: with ``busy_timeout=0`` the rare read SQLite would make
    wait (another connection recovering the WAL) raises ``LookupBusy`` at once, and the caller takes
    the pooled path, which waits without blocking the loop.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], sql: str) -> None:
        self._connect = connect  # database.sqlite_connector: the URL's file and options
        self._sql = sql
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = self._connect()
            conn.isolation_level = None
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA query_only=1")
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._conn = conn
        return self._conn

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        try:
            # fetchall, not fetchone: stepping to the end ends the read, so no snapshot lingers.
            rows = self._connection().execute(self._sql, (token_digest,)).fetchall()
        except sqlite3.OperationalError as exc:
            raise sqlite_lookup_error(exc) from exc  # LookupBusy, or the database is not there
        return session_and_user(rows[0]) if rows else None

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _left(deadline: float) -> float:
    """Seconds until ``deadline`` (the event loop's clock); TimeoutError once it has passed."""
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise TimeoutError()
    return left


class PostgresLookup:
    """A few asyncpg connections of its own, opened on first use, with the statement prepared once
    on each. Having its own connections means session checks never queue behind logins for pooled ones.
    Behind a transaction pooler nothing is prepared to last: the statement, unnamed, is parsed again
    with each check (database.driver_options says why), as the engine's statements are.

    Not asyncpg's Pool: its acquire and release cost CPU on every query (benchmarks/README.md), and
    it resets each connection on release, a second round trip.
    These connections only ever run FIND_SESSION, so there is nothing to reset: a free list is
    enough. A connection whose query failed in any way (or was cancelled) is dropped, never
    reused, and the next check opens a new one.
    """

    def __init__(
        self,
        options: dict[str, Any],
        sql: str,
        *,
        timeout: float,
        statement_timeout: float,
        pool_size: int,
        pooler: str = "none",
        application_name: str = LOOKUP_APPLICATION_NAME,
    ) -> None:
        self._options = options  # asyncpg.connect's keywords, the password among them
        self._ours = driver_options(pooler=pooler, statement_timeout=statement_timeout)
        self._ours["server_settings"] = {
            **self._ours.get("server_settings", {}),
            "application_name": application_name,  # so pg_stat_activity says; pgbouncer knows it
        }
        self._sql = sql
        self._timeout = timeout
        self._size = pool_size
        self._idle: asyncio.Queue[asyncpg.Connection | None] = asyncio.Queue()
        self._open: set[asyncpg.Connection] = set()
        self._opening = 0
        self._closed = False  # by close(): a connect still in flight then must not outlive it

    async def _acquire(self, deadline: float) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise StorageUnavailable()
            if not self._idle.empty():
                conn = self._idle.get_nowait()
            elif self._has_room():
                conn = None
            else:
                conn = await asyncio.wait_for(self._idle.get(), _left(deadline))
            if conn is None:  # room to open one (a connection was dropped, or none is open yet)
                if self._has_room():
                    return await self._connect(deadline)
                continue  # another check took the room first: wait again
            if not conn.is_closed():
                return conn
            self._drop(conn)  # closed while idle: the server went away or ended it

    def _has_room(self) -> bool:
        return len(self._open) + self._opening < self._size

    async def _connect(self, deadline: float) -> asyncpg.Connection:
        self._opening += 1
        try:
            # Ours win over the URL's options of the same name, as the engine's connect_args do:
            # the statement timeout and the statement cache as the engine's (driver_options).
            conn = await asyncpg.connect(**{**self._options, **self._ours, "timeout": _left(deadline)})
        except BaseException:
            self._idle.put_nowait(None)  # the room is free again: wake a check waiting for it
            raise
        finally:
            self._opening -= 1
        if self._closed:  # closed while this one connected: nothing would ever close it
            conn.terminate()
            raise StorageUnavailable()
        self._open.add(conn)
        return conn

    def _drop(self, conn: asyncpg.Connection) -> None:
        self._open.discard(conn)
        conn.terminate()
        # Wake a check waiting for a connection: there is room to open one now, and it must not
        # wait out its timeout for a connection that will never come back.
        self._idle.put_nowait(None)

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        """The session and user of ``token_digest``; waiting for a connection, connecting and the
        query take ``timeout`` seconds in all (DOORWARD_DB_TIMEOUT), then StorageUnavailable."""
        row = await self.fetchrow(self._sql, token_digest)
        return session_and_user(row) if row is not None else None

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of one statement (autocommit: its own transaction), within ``timeout``
        seconds in all, as ``find``: a connection that is not there is StorageUnavailable."""
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            conn = await self._acquire(deadline)
            try:
                # asyncpg's own per-query timeout, in place of the connection's command_timeout.
                row = await conn.fetchrow(sql, *args, timeout=_left(deadline))
            except BaseException:
                self._drop(conn)
                raise
            self._idle.put_nowait(conn)
        except ASYNCPG_UNAVAILABLE as exc:  # the connection is dropped above; the next check opens one
            raise StorageUnavailable() from exc
        except asyncpg.PostgresError as exc:
            if unavailable_sqlstate(exc.sqlstate):
                raise StorageUnavailable() from exc
            raise
        return row

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._open):
            try:
                await asyncio.wait_for(conn.close(), self._timeout)
            except Exception:  # a connection that cannot say goodbye in time is cut
                conn.terminate()
        self._open.clear()
        self._idle = asyncio.Queue()
