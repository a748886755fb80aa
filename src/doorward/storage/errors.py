"""Driver errors become doorward's errors here, and only here.

Each driver's way of saying "the database (or Redis) is not there" becomes the core's
StorageUnavailable, naming the store and chained to the driver's error, which the web layer answers
with 503 and logs under the store's name;
a refusal by the data itself becomes the core error it means (``unique_email``). SqlStore wraps
every connection in ``sql_translated``; the session lookup catches in place, with no context
manager on the busiest request, and asks here what its drivers' errors mean.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from doorward.core.errors import EmailTaken, StorageUnavailable
from doorward.storage.loopsqlite import is_busy

# PostgreSQL's ways of saying "not now": statement timeout or cancel (57014), shutting down (57P0x),
# connection failures (08xxx), too many connections (53300), lock wait timeout (55P03), a database
# that takes no connections now (55000: ``ALLOW_CONNECTIONS false``, a restore or maintenance), and
# a transaction ended to break a deadlock or a serialization conflict (40P01, 40001): rolled back
# whole, it may simply be tried again (two links of one account followed at once: a 500 before).
UNAVAILABLE_SQLSTATES = (
    "57014",
    "57P01",
    "57P02",
    "57P03",
    "08",
    "53300",
    "55P03",
    "55000",
    "40P01",
    "40001",
)


def unavailable_sqlstate(sqlstate: object) -> bool:
    """A PostgreSQL error code that means "not now" rather than "no"."""
    return str(sqlstate or "").startswith(UNAVAILABLE_SQLSTATES)


# What "the database is not there" looks like through SQLAlchemy, from either driver. Integrity
# errors are not among them: they mean the data said no.
_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)


@contextmanager
def sql_translated() -> Iterator[None]:
    """Where "the database is not there" becomes the core's StorageUnavailable (SqlStore's connections)."""
    try:
        yield
    except (DBAPIError, *_UNAVAILABLE) as exc:
        if is_unavailable(exc):
            raise StorageUnavailable() from exc
        raise


def is_unavailable(exc: BaseException) -> bool:
    """An error raised through SQLAlchemy that means the database is not there (or not now)."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return exc.connection_invalidated or unavailable_sqlstate(sqlstate)
    return False


@contextmanager
def unique_email() -> Iterator[None]:
    """An insert into ``users`` that the unique index on the canonical email refuses: EmailTaken."""
    try:
        yield
    except IntegrityError as exc:
        raise EmailTaken() from exc


POOLER_HINT = "is PostgreSQL behind pgbouncer in transaction mode? then set DOORWARD_DB_POOLER=transaction"

_POOLER_ERRORS = (
    asyncpg.exceptions.DuplicatePreparedStatementError,  # a shared server connection has the name already
    asyncpg.exceptions.InvalidSQLStatementNameError,  # the statement was prepared on another one
)


def pooler_trouble(exc: BaseException) -> bool:
    """``exc``, or an error it was raised from, says that a transaction pooler stands in front of
    PostgreSQL while DOORWARD_DB_POOLER does not say so: pgbouncer refusing a startup parameter, or a
    prepared statement that the server connection it lent holds already or lacks."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is short: SQLAlchemy's error, its adapter's, asyncpg's
        if seen is None:
            return False
        if isinstance(seen, _POOLER_ERRORS) or (
            isinstance(seen, asyncpg.exceptions.ProtocolViolationError)
            and "unsupported startup parameter" in str(seen)
        ):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


@contextmanager
def secrets_translated() -> Iterator[None]:
    """Reading the server's secrets at start-up: any SQLAlchemy error, a missing table among them,
    becomes StorageUnavailable with a hint, as the first thing a new installation meets."""
    try:
        yield
    except SQLAlchemyError as exc:
        name = type(getattr(exc, "orig", None) or exc).__name__
        if pooler_trouble(exc):
            raise StorageUnavailable(f"Cannot read server secrets: {POOLER_HINT} ({name})") from exc
        raise StorageUnavailable(
            f"Cannot read server secrets: database unreachable or not migrated (run doorward migrate): {name}"
        ) from exc


class LookupBusy(Exception):
    """SQLite would have made the lookup wait: take the pooled path instead."""


def sqlite_lookup_error(exc: sqlite3.OperationalError) -> Exception:
    """What the session lookup's own SQLite connection raising ``exc`` means: a lock another
    connection holds (LookupBusy, not an error), or a database that is not there."""
    return LookupBusy() if is_busy(exc) else StorageUnavailable()


# The session lookup's asyncpg connections, beside PostgreSQL's own codes (``unavailable_sqlstate``).
# InternalClientError: the server ended the connection while it sat idle, and asyncpg's protocol
# state was left mid-way.
ASYNCPG_UNAVAILABLE = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError)

REDIS = "Redis"
"""The name a Redis outage carries (StorageUnavailable.store), for the log line that reports it."""

_REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


@asynccontextmanager
async def redis_translated() -> AsyncIterator[None]:
    """Where a Redis that is not there becomes the core's StorageUnavailable (RedisThrottleStore),
    naming Redis: the log line says so and the metrics count it apart."""
    try:
        yield
    except _REDIS_UNAVAILABLE as exc:
        raise StorageUnavailable(store=REDIS) from exc
