"""The store and the session lookup through pgbouncer in transaction mode (DOORWARD_DB_POOLER=transaction).

pgbouncer shares three server connections among every client here, so a statement prepared on one
client's connection is met, or missed, by the next client that gets the same server connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from doorward.core.errors import StorageUnavailable
from doorward.storage import SqlStore, create_engine
from doorward.storage.lookup import open_lookup
from tests.conftest import app_for
from tests.pgbouncer import PgBouncer
from tests.storage.test_lookup import NOW, add_session


async def bounced_store(url: str, *, statement_timeout: float = 5) -> SqlStore:
    """A SqlStore with its session lookup, as wiring builds one, on ``url`` behind a transaction pooler."""
    engine = create_engine(url, timeout=5, statement_timeout=statement_timeout, pooler="transaction")
    lookup = open_lookup(
        engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=4, pooler="transaction"
    )
    return SqlStore(engine, lookup=lookup)


@pytest.fixture
async def instances(pgbouncer: PgBouncer, postgres_database: str) -> AsyncIterator[list[SqlStore]]:
    """Two instances' stores over one database, both through pgbouncer."""
    stores = [await bounced_store(pgbouncer.url(postgres_database)) for _ in range(2)]
    yield stores
    for store in stores:
        await store.close()
        await store.engine.dispose()


async def test_many_checks_and_writes_share_few_server_connections(instances: list[SqlStore]) -> None:
    added = [await add_session(instances[n % 2], verified=True, client=None) for n in range(4)]

    async def check(n: int) -> bool:
        digest, user = added[n % 4]
        store = instances[n % 2]
        if n % 3 == 0:  # a write among the reads, on the engine's connections
            async with store.write() as tx:
                await tx.users.set_disabled(user.id, False, NOW)
        found = await store.find_session(digest)
        return found is not None and found[1].id == user.id

    assert await asyncio.gather(*(check(n) for n in range(60))) == [True] * 60


async def test_a_statement_stuck_behind_a_lock_ends_at_the_statement_timeout(
    pgbouncer: PgBouncer, postgres_database: str
) -> None:
    """No statement_timeout reaches the server through pgbouncer: the client's ends the statement
    (asyncpg cancels it), a 503, and the store goes on working."""
    store = await bounced_store(pgbouncer.url(postgres_database), statement_timeout=0.5)
    _, user = await add_session(store, verified=True, client=None)
    blocker = await asyncpg.connect(postgres_database.replace("postgresql://", "postgres://", 1))
    try:
        async with blocker.transaction():
            await blocker.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user.id)
            with pytest.raises(StorageUnavailable) as raised:
                # Without a statement timeout this would wait for the lock for ever: 4 s end the test.
                async with asyncio.timeout(4), store.write() as tx:
                    await tx.users.set_disabled(user.id, True, NOW)
            assert isinstance(raised.value.__cause__, TimeoutError)  # the client's timeout: asyncpg's
        async with store.write() as tx:
            await tx.users.set_disabled(user.id, True, NOW)
        async with store.read() as tx:
            stored = await tx.users.by_id(user.id)
        assert stored is not None and stored.disabled
    finally:
        await blocker.close()
        await store.close()
        await store.engine.dispose()


async def test_without_the_setting_the_start_says_to_set_it(
    pgbouncer: PgBouncer, postgres_database: str
) -> None:
    """pgbouncer refuses the statement_timeout startup parameter: the error says what to set."""
    with pytest.raises(StorageUnavailable, match="DOORWARD_DB_POOLER=transaction"):
        async with app_for(pgbouncer.url(postgres_database)):
            pass
