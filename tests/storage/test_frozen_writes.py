"""A write on a frozen PostgreSQL gives up within the store's limit, cleanup included: the
connection it gives up on is not closed politely at the frozen server's pace (issue 21 item 8)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import make_url, text

from doorward.core.errors import StorageUnavailable
from doorward.storage.database import create_engine
from doorward.storage.store import SqlStore
from tests.proxy import TcpProxy

LIMIT = 0.5
MARGIN = 0.5
WARM = 4  # pooled connections, each given up on in turn: one chance each for a slow cleanup


async def test_each_write_on_a_frozen_database_ends_within_the_limit(postgres_database: str) -> None:
    url = make_url(postgres_database)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        engine = create_engine(url.set(port=proxy.port).render_as_string(hide_password=False), timeout=LIMIT)
        store = SqlStore(engine, limit=LIMIT)
        try:
            gate = asyncio.Barrier(WARM)

            async def hold_one() -> None:  # WARM connections open at once, so the pool keeps them
                async with store.transaction() as conn:
                    await conn.execute(text("SELECT 1"))
                    await gate.wait()

            await asyncio.gather(*(hold_one() for _ in range(WARM)))
            proxy.freeze()
            for attempt in range(WARM):
                started = time.monotonic()
                with pytest.raises(StorageUnavailable):
                    async with store.transaction() as conn:
                        await conn.execute(text("UPDATE users SET email = email WHERE id = 0"))
                elapsed = time.monotonic() - started
                assert elapsed < LIMIT + MARGIN, f"write {attempt + 1} took {elapsed:.2f} s"
        finally:
            proxy.restore()
            await engine.dispose()
