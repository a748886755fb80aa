"""SQLite on the event loop's thread (storage/loopsqlite.py): locks are waited for, never slept on."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import make_url

from doorward.core.errors import StorageUnavailable
from doorward.core.models import NewUser
from doorward.storage import SqlStore, create_engine, open_checkpointer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def sqlite_path(url: str) -> str:
    return str(make_url(url).database)


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlStore]:
    engine = create_engine(sqlite_url, timeout=3)
    yield SqlStore(engine)
    await engine.dispose()


@pytest.fixture
def other_process(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """A connection of its own, as another doorward process would have (SQLite's locks see no difference)."""
    conn = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")  # as doorward's first connection leaves the file
    yield conn
    conn.close()


async def add_user(store: SqlStore, n: int) -> int:
    async with store.write() as tx:
        user = await tx.users.add(NewUser(f"u{n}@example.com", f"u{n}@example.com", "$argon2id$x"), NOW)
    return user.id


async def holding_a_write(store: SqlStore, seconds: float) -> asyncio.Task[None]:
    """A task inside a write transaction (one row added), holding the lock for ``seconds``."""
    holding = asyncio.Event()

    async def writer() -> None:
        async with store.write() as tx:
            await tx.users.add(NewUser("h@example.com", "h@example.com", "$argon2id$x"), NOW)
            holding.set()
            await asyncio.sleep(seconds)

    task = asyncio.create_task(writer())
    await holding.wait()
    return task


async def ticks_while(work: asyncio.Task[object]) -> int:
    """How many 5 ms ticks the event loop ran while ``work`` waited: 0 if something blocked it."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.005)
        ticks += 1
    return ticks


async def test_a_write_waits_for_another_process_while_the_loop_runs_on(
    store: SqlStore, other_process: sqlite3.Connection
) -> None:
    other_process.execute("BEGIN IMMEDIATE")  # the other process holds the write lock
    asyncio.get_running_loop().call_later(0.3, other_process.execute, "COMMIT")
    started = time.monotonic()
    write = asyncio.create_task(add_user(store, 1))
    ticks = await ticks_while(write)
    assert await write > 0
    assert time.monotonic() - started >= 0.3  # it did wait for the lock...
    assert ticks >= 20  # ...and the loop served others all along (SQLite's own busy wait blocks it)


async def test_a_write_gives_up_after_the_timeout_as_storage_unavailable(
    sqlite_url: str, other_process: sqlite3.Connection
) -> None:
    engine = create_engine(sqlite_url, timeout=0.3)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await add_user(SqlStore(engine), 1)
        assert 0.3 <= time.monotonic() - started < 2
    finally:
        other_process.execute("ROLLBACK")
        await engine.dispose()


async def test_the_timeout_bounds_the_whole_wait_for_the_write_lock(
    sqlite_url: str, other_process: sqlite3.Connection
) -> None:
    """Queueing behind a writer of this process and then for another process's lock share one
    timeout; each had one of its own, so a write could wait twice as long as configured."""
    engine = create_engine(sqlite_url, timeout=0.6)
    store = SqlStore(engine)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.create_task(add_user(store, 1))  # holds this process's turn, gives up at 0.6 s
        await asyncio.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await add_user(store, 2)  # its turn comes at 0.6 s, with 0.3 s of its timeout left
        assert time.monotonic() - started < 0.75
        with pytest.raises(StorageUnavailable):
            await first
    finally:
        other_process.execute("ROLLBACK")
        await engine.dispose()


async def test_reads_go_on_while_another_process_writes(
    store: SqlStore, other_process: sqlite3.Connection
) -> None:
    user_id = await add_user(store, 1)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        async with store.read() as tx:
            assert (await tx.users.by_id(user_id)) is not None
    finally:
        other_process.execute("ROLLBACK")


async def test_writers_of_one_process_take_turns_in_order(store: SqlStore) -> None:
    """Each holds the lock across an await; none fails, and they get it in the order they asked."""
    entered: list[int] = []

    async def writer(n: int) -> None:
        async with store.write() as tx:
            entered.append(n)
            await tx.users.add(NewUser(f"w{n}@example.com", f"w{n}@example.com", "$argon2id$x"), NOW)
            await asyncio.sleep(0.01)

    tasks = []
    for n in range(20):
        tasks.append(asyncio.create_task(writer(n)))
        await asyncio.sleep(0)  # each asks for the lock before the next is made
    await asyncio.gather(*tasks)
    assert entered == list(range(20))


async def test_a_cancelled_write_gives_the_lock_back(store: SqlStore) -> None:
    task = await holding_a_write(store, 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(1):  # well inside the 3 s timeout: the lock was released, not timed out
        await add_user(store, 2)
    async with store.read() as tx:
        assert await tx.users.by_canonical_email("h@example.com") is None  # rolled back


async def test_the_checkpointer_moves_the_log_into_the_database(store: SqlStore, sqlite_url: str) -> None:
    """Commits leave their pages in the write-ahead log; the checkpointer's thread copies them over."""
    path = Path(sqlite_path(sqlite_url))
    for n in range(200):
        await add_user(store, n)
    before = path.stat().st_size
    assert Path(f"{path}-wal").stat().st_size > 0
    checkpointer = open_checkpointer(make_url(sqlite_url), interval=0.05)
    assert checkpointer is not None
    try:
        for _ in range(100):  # the checkpointer runs every 50 ms; 5 s at most
            if path.stat().st_size > before:
                break
            await asyncio.sleep(0.05)
    finally:
        checkpointer.stop()
    assert path.stat().st_size > before


def test_no_checkpointer_for_a_database_in_memory() -> None:
    assert open_checkpointer(make_url("sqlite://")) is None
    assert open_checkpointer(make_url("postgresql://u@h/db")) is None


async def test_a_writer_of_the_same_process_gives_up_after_the_timeout(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url, timeout=0.3)
    store = SqlStore(engine)
    try:
        slow = await holding_a_write(store, 1)
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await add_user(store, 2)
        assert 0.3 <= time.monotonic() - started < 0.9
        await slow  # the first writer was not disturbed
        assert await add_user(store, 3) > 0  # and the lock is free again
    finally:
        await engine.dispose()
