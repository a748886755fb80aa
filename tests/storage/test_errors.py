"""What each driver's errors become (storage/errors.py), beyond what the store's tests see."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from doorward.core.errors import StorageUnavailable
from doorward.storage.errors import LookupBusy, sqlite_lookup_error, unavailable_sqlstate
from doorward.storage.redis_throttle import RedisThrottleStore


@pytest.mark.parametrize(
    ("sqlstate", "unavailable"),
    [
        *[("57014", True), ("57P01", True), ("08006", True), ("53300", True), ("55P03", True)],
        *[("40P01", True), ("40001", True)],  # a deadlock or a serialization conflict: try again
        *[("23505", False), ("42P01", False), ("", False), (None, False)],  # a refusal, or no code
    ],
)
def test_postgresql_codes_that_mean_not_now(sqlstate: str | None, unavailable: bool) -> None:
    assert unavailable_sqlstate(sqlstate) is unavailable


@pytest.fixture
def two_connections(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, sqlite3.Connection]]:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    reader = sqlite3.connect(path, isolation_level=None, timeout=0)
    yield holder, reader
    reader.close()
    holder.close()


def test_a_sqlite_lock_is_busy_and_anything_else_unavailable(
    two_connections: tuple[sqlite3.Connection, sqlite3.Connection],
) -> None:
    holder, reader = two_connections
    holder.execute("BEGIN EXCLUSIVE")  # a rollback journal: no reader gets in meanwhile
    with pytest.raises(sqlite3.OperationalError) as locked:
        reader.execute("SELECT * FROM t").fetchall()
    holder.execute("ROLLBACK")
    with pytest.raises(sqlite3.OperationalError) as missing:
        reader.execute("SELECT * FROM no_such_table")

    assert isinstance(sqlite_lookup_error(locked.value), LookupBusy)
    assert isinstance(sqlite_lookup_error(missing.value), StorageUnavailable)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_redis_that_is_not_there_is_storage_unavailable() -> None:
    store = RedisThrottleStore.from_url(f"redis://127.0.0.1:{unused_port()}/0", timeout=1)
    try:
        with pytest.raises(StorageUnavailable) as raised:
            await store.login_state("account", None, datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        await store.close()
    assert isinstance(raised.value.__cause__, (RedisConnectionError, OSError))
