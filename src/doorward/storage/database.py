"""Engines: the URL users write, turned into an async engine tuned for SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from doorward.storage.loopsqlite import BEGIN_WRITE, Checkpointer, LoopConnection

WRITE_OPTION = "doorward_write"
READ_OPTION = "doorward_read"


def read_options(engine: AsyncEngine) -> dict[str, object]:
    """Execution options for single-statement reads: no BEGIN, no COMMIT.

    PostgreSQL: autocommit. SQLite: doorward emits BEGIN itself, so a read simply skips it;
    autocommit there would make SQLAlchemy switch the isolation level on every checkout and back
    on every return, two more statements per request.
    """
    if engine.dialect.name == "sqlite":
        return {READ_OPTION: True}
    return {"isolation_level": "AUTOCOMMIT"}


def async_url(database_url: str) -> URL:
    """``sqlite:///x.db`` -> aiosqlite, ``postgresql://`` -> asyncpg; an explicit driver is kept."""
    url = make_url(database_url)
    if url.drivername in {"sqlite", "sqlite+pysqlite"}:
        return url.set(drivername="sqlite+aiosqlite")
    if url.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        return url.set(drivername="postgresql+asyncpg")
    return url


TRANSACTION_POOLER = "transaction"
"""DOORWARD_DB_POOLER's value for PostgreSQL reached through pgbouncer's ``pool_mode=transaction``."""


def driver_options(*, pooler: str = "none", statement_timeout: float | None = None) -> dict[str, Any]:
    """What doorward passes to ``asyncpg.connect`` beside the URL's own options.

    Direct to PostgreSQL: ``statement_timeout`` as a startup parameter, the server's bound, and
    asyncpg's ``command_timeout`` a second later, the client's backstop should the server hang.
    Behind a transaction pooler (Debian 12's pgbouncer 1.18): no startup parameter, since pgbouncer
    closes the connection on any it does not know, so the bound is the client's (asyncpg cancels the
    statement, through pgbouncer, and raises TimeoutError); and asyncpg's statement cache off, so it
    prepares no named statement, which would live on whichever server connection the transaction
    had, not on the next one, and whose name the next client's statement would collide with.
    """
    if pooler == TRANSACTION_POOLER:
        options: dict[str, Any] = {"statement_cache_size": 0}
        if statement_timeout is not None:
            options["command_timeout"] = statement_timeout
        return options
    if statement_timeout is None:
        return {}
    return {
        "command_timeout": statement_timeout + 1,
        "server_settings": {"statement_timeout": str(int(statement_timeout * 1000))},
    }


def _unnamed_statement() -> str:
    return ""


def connect_args(*, pooler: str = "none", statement_timeout: float | None = None) -> dict[str, Any]:
    """``driver_options`` plus SQLAlchemy's asyncpg adapter's own: behind a transaction pooler,
    its cache of prepared statements off, and every statement unnamed.

    SQLAlchemy prepares each statement it runs. asyncpg sends an unnamed one, with its own cache off,
    again in the very message that runs it (Parse, Bind, Execute, Sync), so whichever server
    connection pgbouncer gives that message has it; the cost is a second round trip per statement
    (the first describes it). Unique names, SQLAlchemy's recipe for pgbouncer, fail here: between
    preparing a statement and running it asyncpg closes the previous one with a Sync of its own,
    outside a transaction pgbouncer may then give the run to another server connection ("prepared
    statement ... does not exist", seen in tests/e2e/test_pgbouncer.py), and the names pile up on
    the server connections, which pgbouncer does not reset between transactions. SQLAlchemy's cache
    would keep the first description of a statement for later runs, stale after a migration.
    """
    args = driver_options(pooler=pooler, statement_timeout=statement_timeout)
    if pooler == TRANSACTION_POOLER:
        # asyncpg 0.31 leaves statements unnamed when its cache is off; before, only this name does.
        args.update(prepared_statement_cache_size=0, prepared_statement_name_func=_unnamed_statement)
    return args


def create_engine(
    database_url: str,
    *,
    timeout: float = 5.0,
    statement_timeout: float = 5.0,
    pool_size: int = 10,
    pooler: str = "none",
) -> AsyncEngine:
    """An engine whose waits end: ``timeout`` to connect or get the lock, ``statement_timeout`` to run;
    ``pooler`` says how PostgreSQL is reached (DOORWARD_DB_POOLER; SQLite ignores it)."""
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        connect = sqlite_connector(url)
        writers = asyncio.Lock()  # one write transaction per process: see loopsqlite.py

        async def open_connection() -> LoopConnection:
            return await LoopConnection.open(connect, writers, timeout)

        # hide_parameters: a failed statement's log line must not carry a password hash or a digest.
        engine = create_async_engine(
            url,
            async_creator=open_connection,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=timeout,
            hide_parameters=True,
        )
        _begin_immediate_for_writes(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout,
        hide_parameters=True,
        # No pre-ping: it costs a round trip on every checkout. A connection that fails with a
        # disconnect invalidates the whole pool, so one request answers 503 and the next reconnect.
        connect_args={"timeout": timeout, **connect_args(pooler=pooler, statement_timeout=statement_timeout)},
    )
    _cut_invalidated_connections(engine)
    return engine


def _cut_invalidated_connections(engine: AsyncEngine) -> None:
    """Close a connection the pool gives up on at once, without a goodbye to the server.

    SQLAlchemy closes an invalidated asyncpg connection gracefully, waiting up to 2 s (its own,
    fixed) for a server that may be the very reason it was given up: a use cancelled by
    DOORWARD_DB_TIMEOUT on a frozen database then took the timeout plus those 2 s. Cut first,
    the graceful close finds the connection closed and returns; the server sees the socket close.
    """

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(_dbapi_connection: Any, record: Any, _exception: BaseException | None) -> None:
        driver_connection = record.driver_connection
        if driver_connection is not None:
            driver_connection.terminate()


def sqlite_connector(url: URL, *, one_thread: bool = False) -> Callable[[], sqlite3.Connection]:
    """A function that opens a new sqlite3 connection to the database of ``url``.

    ``one_thread``: the connection refuses use from any thread but the one that opened it
    (sqlite3's own ``check_same_thread``). Off by default: a pool may close a connection from
    another thread.
    """
    args, kwargs = SQLiteDialect_pysqlite().create_connect_args(url)
    kwargs["check_same_thread"] = one_thread
    connect: Callable[..., sqlite3.Connection] = sqlite3.connect
    return lambda: connect(*args, **kwargs)


def open_checkpointer(url: URL, interval: float = 1.0) -> Checkpointer | None:
    """A started Checkpointer for a SQLite database file (see loopsqlite.py), else None."""
    if url.get_backend_name() != "sqlite" or in_memory(url):
        return None
    checkpointer = Checkpointer(sqlite_connector(url), interval)
    checkpointer.start()
    return checkpointer


def in_memory(url: URL) -> bool:
    """A SQLite URL of a database that lives in memory (nothing to look up or checkpoint on disk)."""
    return not url.database or url.database == ":memory:" or "mode=memory" in str(url)


def _begin_immediate_for_writes(engine: AsyncEngine) -> None:
    """BEGIN IMMEDIATE for writes: a writer queues for the lock at BEGIN, not halfway through.

    In WAL mode a deferred transaction that reads and then writes cannot wait for the lock once
    another writer has committed: SQLite fails it at once with SQLITE_BUSY. Taking the write lock
    at BEGIN makes writers queue instead (loopsqlite.py: on an asyncio lock in the process, by
    retrying across processes). Python's sqlite3 module would emit its own BEGIN, so it is
    switched off (loopsqlite.LoopConnection.open) and doorward begins.
    """

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(READ_OPTION) or options.get("isolation_level") == "AUTOCOMMIT":
            return  # single-statement reads need no transaction
        connection.exec_driver_sql(BEGIN_WRITE if options.get(WRITE_OPTION) else "BEGIN")


async def ping(engine: AsyncEngine, limit: float) -> bool:
    """True when the database answers within ``limit`` seconds and its schema has been migrated."""
    try:
        async with asyncio.timeout(limit):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT version_num FROM alembic_version"))
    except Exception:
        return False
    return True


async def schema_revision(engine: AsyncEngine, limit: float) -> str | None:
    """The revision the database's schema is at, read within ``limit`` seconds; None when the
    database does not answer in time or holds no revision (never migrated)."""
    try:
        async with asyncio.timeout(limit):
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception:
        return None
