"""The session check's read on the driver itself (storage/lookup.py), on both databases."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.dialects import sqlite

from doorward.core.errors import StorageUnavailable
from doorward.core.models import NewUser, Session, User
from doorward.core.tokens import new_token, token_digest
from doorward.storage import SqlStore, create_engine
from doorward.storage.errors import LookupBusy
from doorward.storage.lookup import LOOKUP_APPLICATION_NAME, open_lookup

_TERMINATE_LOOKUPS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE application_name = :name AND datname = current_database()"
)
NOW = datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """The same database through the fast lookup and through the repositories."""
    engine = create_engine(database_url, timeout=5)
    lookup = open_lookup(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=2)
    assert lookup is not None, database_url
    fast = SqlStore(engine, lookup=lookup)
    yield fast, SqlStore(engine)
    await fast.close()
    await engine.dispose()


async def add_session(store: SqlStore, *, verified: bool, client: str | None) -> tuple[bytes, User]:
    digest = token_digest(new_token())
    async with store.write() as tx:
        email = f"Lookup.{digest.hex()[:8]}@Example.com"
        user = await tx.users.add(NewUser(email, email.lower(), "$argon2id$x", verified), NOW)
        session = Session(
            f"s{digest.hex()[:10]}", user.id, NOW, NOW, NOW + timedelta(days=1), client, client and "ua"
        )
        await tx.sessions.add(session, digest)
    return digest, user


@pytest.mark.parametrize(("verified", "client"), [(True, "192.0.2.7"), (False, None)])
async def test_the_fast_lookup_answers_what_the_repository_answers(
    stores: tuple[SqlStore, SqlStore], verified: bool, client: str | None
) -> None:
    fast, plain = stores
    digest, user = await add_session(fast, verified=verified, client=client)

    found = await fast.find_session(digest)

    assert found is not None
    assert found == await plain.find_session(digest)
    session, owner = found
    assert owner == user
    assert (session.created_at, session.expires_at) == (NOW, NOW + timedelta(days=1))
    assert session.created_at.tzinfo is UTC and owner.created_at.tzinfo is UTC
    assert (session.client_address, owner.email_verified_at) == (client, NOW if verified else None)
    assert await fast.find_session(token_digest(new_token())) is None


async def test_what_is_committed_is_seen_by_the_next_fast_lookup(stores: tuple[SqlStore, SqlStore]) -> None:
    fast, _ = stores
    digest, user = await add_session(fast, verified=True, client=None)
    assert await fast.find_session(digest) is not None

    async with fast.write() as tx:
        await tx.users.set_disabled(user.id, True, NOW)
    found = await fast.find_session(digest)
    assert found is not None and found[1].disabled

    async with fast.write() as tx:
        assert await tx.sessions.delete(digest)
    assert await fast.find_session(digest) is None


async def test_more_checks_than_connections_wait_their_turn(stores: tuple[SqlStore, SqlStore]) -> None:
    fast, _ = stores  # two connections of its own
    digests = [(await add_session(fast, verified=True, client=None))[0] for _ in range(3)]
    found = await asyncio.gather(*(fast.find_session(digests[n % 3]) for n in range(24)))
    assert all(f is not None for f in found)
    assert [f[0].id for f in found if f] == [found[n % 3][0].id for n in range(24)]  # type: ignore[index]


async def test_a_lost_postgresql_connection_is_replaced(postgres_database: str) -> None:
    engine = create_engine(postgres_database, timeout=5)
    lookup = open_lookup(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=1)
    store = SqlStore(engine, lookup=lookup)
    try:
        digest, _ = await add_session(store, verified=True, client=None)
        assert await store.find_session(digest) is not None
        async with engine.connect() as conn:  # the server (or a failover) ends the connection
            await conn.execute(text(_TERMINATE_LOOKUPS), {"name": LOOKUP_APPLICATION_NAME})
        outcomes = []
        for _ in range(2):
            try:
                outcomes.append(await store.find_session(digest) is not None)
            except StorageUnavailable:
                outcomes.append(False)  # the check that found the connection gone: 503
        assert outcomes[-1] is True  # the next one has a new connection
    finally:
        await store.close()
        await engine.dispose()


async def test_a_connection_opened_while_the_lookup_closes_is_not_left_open(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At shutdown a check may still be connecting: its connection must not outlive close()."""
    engine = create_engine(postgres_database, timeout=5)
    lookup = open_lookup(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=1)
    assert lookup is not None
    connecting, go_on = asyncio.Event(), asyncio.Event()
    real_connect = asyncpg.connect

    async def slow_connect(**options: object) -> asyncpg.Connection:
        connecting.set()
        await go_on.wait()  # the real connection is made after close() has run
        return await real_connect(**options)

    monkeypatch.setattr(asyncpg, "connect", slow_connect)
    try:
        check = asyncio.create_task(lookup.find(bytes(32)))
        await connecting.wait()
        await lookup.close()
        go_on.set()
        with pytest.raises(StorageUnavailable):
            await check
        with pytest.raises(StorageUnavailable):
            await lookup.find(bytes(32))  # and none opens after
        count = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = :name AND datname = current_database()"
        )
        for _ in range(40):  # a terminated connection's server process exits a moment later
            async with engine.connect() as conn:
                left = (await conn.execute(count, {"name": LOOKUP_APPLICATION_NAME})).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.05)
        assert left == 0
    finally:
        await engine.dispose()


async def test_a_late_touch_never_moves_last_seen_back(stores: tuple[SqlStore, SqlStore]) -> None:
    fast, _ = stores
    digest, _ = await add_session(fast, verified=True, client=None)
    found = await fast.find_session(digest)
    assert found is not None
    for moment in (NOW + timedelta(minutes=5), NOW + timedelta(minutes=2)):  # the later one commits first
        async with fast.write() as tx:
            await tx.sessions.touch(found[0].id, moment)
    after = await fast.find_session(digest)
    assert after is not None and after[0].last_seen_at == NOW + timedelta(minutes=5)


class BusyLookup:
    """A lookup SQLite would have made wait, every time."""

    def __init__(self) -> None:
        self.calls = 0

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        self.calls += 1
        raise LookupBusy()

    async def close(self) -> None:
        pass


async def test_a_lookup_that_would_wait_falls_back_to_the_pooled_read(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url, timeout=5)
    busy = BusyLookup()
    store = SqlStore(engine, lookup=busy)
    try:
        digest, user = await add_session(store, verified=True, client=None)
        found = await store.find_session(digest)
        assert busy.calls == 1
        assert found is not None and found[1] == user
    finally:
        await engine.dispose()


async def test_the_sqlite_lookup_refuses_another_thread(sqlite_url: str) -> None:
    # Its connection is queried in place on the event loop's thread, outside any pool's care.
    engine = create_engine(sqlite_url, timeout=5)
    lookup = open_lookup(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=1)
    assert lookup is not None
    try:
        assert await lookup.find(bytes(32)) is None  # opens the connection on this thread
        with pytest.raises(sqlite3.ProgrammingError, match="thread"):
            await asyncio.to_thread(asyncio.run, lookup.find(bytes(32)))
    finally:
        await lookup.close()
        await engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_has_no_fast_lookup(url: str) -> None:
    # Another connection would see another, empty database.
    lookup = open_lookup(make_url(url), sqlite.dialect(), timeout=1, statement_timeout=1, pool_size=1)
    assert lookup is None


async def test_an_unreachable_postgresql_is_storage_unavailable_in_time(postgres_database: str) -> None:
    url = make_url(postgres_database).set(host="127.0.0.1", port=9)  # discard: nothing listens
    engine = create_engine(postgres_database, timeout=1)
    lookup = open_lookup(url, engine.dialect, timeout=1, statement_timeout=1, pool_size=1)
    assert lookup is not None
    try:
        async with asyncio.timeout(3):
            with pytest.raises(StorageUnavailable):
                await lookup.find(token_digest(new_token()))
    finally:
        await lookup.close()
        await engine.dispose()


async def test_the_postgresql_lookup_connects_as_the_engine_does(postgres_database: str) -> None:
    """URL options the engine takes must not break the lookup: SQLAlchemy's own statement cache
    size reached the server as a setting it does not know, and an asyncpg option the lookup also
    sets (command_timeout) was passed twice; either failed every check."""
    options = {"prepared_statement_cache_size": "50", "command_timeout": "10"}
    url = make_url(postgres_database).update_query_dict(options)
    engine = create_engine(url.render_as_string(hide_password=False), timeout=5)
    lookup = open_lookup(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=1)
    store = SqlStore(engine, lookup=lookup)
    try:
        digest, _ = await add_session(store, verified=True, client=None)
        assert await store.find_session(digest) is not None
    finally:
        await store.close()
        await engine.dispose()
