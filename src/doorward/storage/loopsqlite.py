"""SQLite on the event loop's own thread, behind SQLAlchemy's aiosqlite dialect.

Why not aiosqlite itself: it runs each statement on its connection's own thread and hands the
result back through the event loop, two thread switches and a GIL hand-off per statement, far more
than a statement on a warm page cache costs, and a login runs a dozen. Here every statement runs
where it is awaited, and SQLAlchemy cannot tell the difference (it drives this connection exactly
as an aiosqlite one, through ``create_async_engine(async_creator=...)``).

What must then never happen is the event loop sleeping inside SQLite: no wait for a lock
(``retrying``), for another writer of the process (``LoopConnection``) or for a checkpoint's
fsyncs (``Checkpointer``). What still runs on the loop is a statement's own work: every doorward
statement is a lookup or a write of a few rows by an index; bulk work (``doorward prune``,
imports) runs in the command-line tools, where there is no loop to block but their own.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

PRAGMAS = (
    "PRAGMA busy_timeout=0",  # never sleep on the event loop: ``retrying`` pauses instead
    "PRAGMA wal_autocheckpoint=0",  # never checkpoint on the event loop: Checkpointer does
    "PRAGMA journal_mode=WAL",  # readers and the writer do not block each other
    "PRAGMA synchronous=NORMAL",  # WAL stays consistent; the last commits may be lost on power loss
    "PRAGMA foreign_keys=ON",
)

BEGIN_WRITE = "BEGIN IMMEDIATE"
"""The statement that starts a write transaction (database.py emits it): writers queue before it."""

_RETRY_PAUSES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)
"""Seconds between tries of a statement that met another process's lock; the last one repeats."""


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLite refused for a lock another connection holds (a retry may succeed)."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def retrying(fn: Callable[[], T], lock_wait: float) -> T:
    """``fn()`` now; again after a pause while another process holds the lock it needs.

    ``busy_timeout`` is 0, so SQLite never waits for a lock itself: a statement that meets a lock
    held by another process gets SQLITE_BUSY at once and is retried after an ``asyncio.sleep``,
    with a growing pause. A failed statement changed nothing, so a retry is safe. Gives up after
    ``lock_wait`` seconds with SQLite's own "database is locked", as a busy timeout would.
    """
    pauses = iter(_RETRY_PAUSES)
    pause = _RETRY_PAUSES[0]
    deadline: float | None = None
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + lock_wait
            if now >= deadline:
                raise
            pause = next(pauses, pause)
            await asyncio.sleep(min(pause, deadline - now))


class LoopConnection:
    """An aiosqlite-like connection whose statements run on the calling (event loop) thread.

    Writers of one process queue on an ``asyncio.Lock`` before ``BEGIN IMMEDIATE``, released when
    the transaction ends. SQLite lets one writer in at a time anyway; queueing in the process hands
    the lock on at once, in order, where polling would leave it idle between tries.
    """

    def __init__(self, conn: sqlite3.Connection, writers: asyncio.Lock, lock_wait: float) -> None:
        self._conn = conn
        self._writers = writers  # the engine's: one write transaction per process at a time
        self._lock_wait = lock_wait
        self._writing = False
        self._tx = _Inline()  # SQLAlchemy's isolation_level setter queues its change here

    @classmethod
    async def open(
        cls, connect: Callable[[], sqlite3.Connection], writers: asyncio.Lock, lock_wait: float
    ) -> LoopConnection:
        conn = connect()
        try:
            conn.isolation_level = None  # doorward emits BEGIN itself (database.py)
            for pragma in PRAGMAS:
                await retrying(functools.partial(conn.execute, pragma), lock_wait)
        except BaseException:
            conn.close()
            raise
        return cls(conn, writers, lock_wait)

    # --- what SQLAlchemy's aiosqlite adapter uses -------------------------------------------------

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> LoopCursor:
        return LoopCursor(self, self._conn.cursor())

    async def commit(self) -> None:
        await self._run(self._conn.commit)
        self._release_if_done()

    async def rollback(self) -> None:
        try:
            self._conn.rollback()
        finally:
            self._release_if_done()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close now (SQLAlchemy's terminate)."""
        try:
            self._conn.close()
        finally:
            self._release()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    # --- locks ------------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await retrying(fn, self._lock_wait)

    async def _begin_write(self, fn: Callable[[], T]) -> T:
        # One timeout for the whole wait: this process's turn, then other processes' lock.
        deadline = time.monotonic() + self._lock_wait
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can be cancelled just after its
        # inner acquire succeeded and drop the lock it took. Lock.acquire itself cancels cleanly.
        try:
            async with asyncio.timeout(self._lock_wait):
                await self._writers.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._writing = True
        try:
            return await retrying(fn, max(0.0, deadline - time.monotonic()))
        except BaseException:
            self._release_if_done()
            raise

    def _release_if_done(self) -> None:
        if not self._conn.in_transaction:
            self._release()

    def _release(self) -> None:
        if self._writing:
            self._writing = False
            self._writers.release()


class LoopCursor:
    """An aiosqlite-like cursor over a LoopConnection."""

    def __init__(self, owner: LoopConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> LoopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> LoopCursor:
        def run() -> None:
            if parameters is None:
                self._cursor.execute(sql)
            else:
                self._cursor.execute(sql, parameters)

        if sql == BEGIN_WRITE:
            await self._owner._begin_write(run)
        else:
            await self._owner._run(run)
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> LoopCursor:
        rows = list(rows)  # a retry must see them all again
        await self._owner._run(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()


class _Inline:
    """Runs ``(future, function)`` at once: stands in for aiosqlite's queue to its thread."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to whoever awaits the future
            future.set_exception(exc)


class Checkpointer:
    """Copies the write-ahead log into the database from a thread of its own, every ``interval``.

    A checkpoint syncs both files to disk: a commit that triggered one would block the event loop
    for two fsyncs, so the connections do not checkpoint on commit (``wal_autocheckpoint=0``).
    PASSIVE checkpoints neither wait for nor block readers and writers. Each worker process runs
    one; two at once are harmless (one finds the other's work done, or SQLite tells it busy).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], interval: float = 1.0) -> None:
        self._connect = connect
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="doorward-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        conn = self._connect()
        try:
            conn.execute("PRAGMA busy_timeout=0")
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy or transient: the next round tries again
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
