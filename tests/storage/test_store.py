"""The SQL store against real SQLite files: transactions, indexes, UTC, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from doorward.core.errors import EmailTaken, StorageUnavailable
from doorward.core.models import NewUser, Session
from doorward.core.tokens import new_token, token_digest
from doorward.storage import SqlStore, create_engine, downgrade, load_or_create_secret, upgrade
from doorward.storage.database import async_url
from doorward.storage.rows import FIND_SESSION
from doorward.storage.tables import metadata, sessions, users
from tests.db import schema_tables, table_names

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    engine = create_engine(database_url, timeout=5)
    yield SqlStore(engine)
    await engine.dispose()


def new_user(n: int = 1) -> NewUser:
    return NewUser(f"User{n}@Example.com", f"user{n}@example.com", "$argon2id$placeholder")


def new_session(user_id: int, sid: str = "s1") -> Session:
    return Session(sid, user_id, NOW, NOW, NOW + timedelta(days=1), "192.0.2.1", "ua")


def test_migrations_go_down_and_up_again_and_match_the_tables(database_url: str) -> None:
    assert table_names(database_url) == schema_tables()
    downgrade(database_url, "base")
    assert table_names(database_url) == {"alembic_version"}
    upgrade(database_url)

    async def differences() -> list[object]:
        engine = create_async_engine(async_url(database_url), poolclass=NullPool)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        await engine.dispose()
        return list(diff)

    assert asyncio.run(differences()) == []


async def test_times_come_back_as_aware_utc(store: SqlStore) -> None:
    async with store.write() as tx:
        user = await tx.users.add(new_user(), NOW)
        await tx.sessions.add(new_session(user.id), b"d" * 32)
    async with store.read() as tx:
        found = await tx.sessions.find(b"d" * 32)
    assert found is not None
    session, owner = found
    assert session.expires_at == NOW + timedelta(days=1)
    assert session.created_at.tzinfo is UTC and owner.created_at.tzinfo is UTC
    assert owner.email == "User1@Example.com"


async def test_canonical_email_is_unique(store: SqlStore) -> None:
    async with store.write() as tx:
        await tx.users.add(new_user(), NOW)
    with pytest.raises(EmailTaken):
        async with store.write() as tx:
            await tx.users.add(new_user(), NOW)


async def test_a_failed_write_leaves_nothing_behind(store: SqlStore) -> None:
    async with store.write() as tx:
        await tx.users.add(new_user(1), NOW)
    with pytest.raises(EmailTaken):
        async with store.write() as tx:
            await tx.users.add_many([new_user(2), new_user(3), new_user(1)], NOW)
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            user = await tx.users.add(new_user(4), NOW)
            await tx.sessions.add(new_session(user.id), b"e" * 32)
            raise RuntimeError("the login failed half way")
    async with store.read() as tx:
        assert await tx.users.by_canonical_email("user2@example.com") is None
        assert await tx.users.by_canonical_email("user4@example.com") is None
        assert await tx.sessions.find(b"e" * 32) is None


async def test_password_hash_replacement_is_compare_and_set(store: SqlStore) -> None:
    async with store.write() as tx:
        user = await tx.users.add(new_user(), NOW)
        assert await tx.users.replace_password_hash(user.id, user.password_hash, "$argon2id$new", NOW)
        assert not await tx.users.replace_password_hash(user.id, user.password_hash, "$argon2id$lost", NOW)
    async with store.read() as tx:
        found = await tx.users.by_canonical_email("user1@example.com")
    assert found is not None and found.password_hash == "$argon2id$new"


async def test_sessions_end_one_by_one_or_all_at_once(store: SqlStore) -> None:
    async with store.write() as tx:
        user = await tx.users.add(new_user(), NOW)
        for n in range(3):
            await tx.sessions.add(new_session(user.id, f"s{n}"), bytes([n]) * 32)
    async with store.write() as tx:
        assert await tx.sessions.delete(bytes([0]) * 32)
        assert not await tx.sessions.delete(bytes([0]) * 32)
        assert await tx.sessions.delete_for_user(user.id) == 2


def _plan(database_url: str, statement: object) -> str:
    engine = create_sync_engine(database_url)
    with engine.connect() as conn:
        compiled = statement.compile(engine, compile_kwargs={"literal_binds": False})  # type: ignore[attr-defined]
        params = [b"x" * 32 if isinstance(v, bytes) or v is None else v for v in compiled.params.values()]
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(params)).all()
    engine.dispose()
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("name", "statement", "index"),
    [
        ("session check", FIND_SESSION, "ix_sessions_token_digest"),
        ("login lookup", select(users).where(users.c.email_canonical == "a"), "ix_users_email_canonical"),
        ("revoke all", sessions.delete().where(sessions.c.user_id == 1), "ix_sessions_user_id"),
    ],
)
def test_request_path_lookups_use_an_index(sqlite_url: str, name: str, statement: object, index: str) -> None:
    plan = _plan(sqlite_url, statement)
    assert index in plan, f"{name}: {plan}"
    assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), f"{name}: {plan}"


async def test_concurrent_writers_queue_instead_of_failing(store: SqlStore) -> None:
    async with store.write() as tx:
        user = await tx.users.add(new_user(), NOW)

    async def login_like(n: int) -> None:
        digest = token_digest(new_token())
        async with store.read() as tx:
            await tx.users.by_canonical_email("user1@example.com")
        async with store.write() as tx:
            await tx.users.replace_password_hash(user.id, "nothing", "nothing", NOW)
            await tx.sessions.add(new_session(user.id, f"c{n}"), digest)

    await asyncio.gather(*(login_like(n) for n in range(80)))
    async with store.write() as tx:
        assert await tx.sessions.delete_for_user(user.id) == 80


async def test_an_unreachable_database_is_storage_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}", timeout=1)
    try:
        with pytest.raises(StorageUnavailable):
            async with SqlStore(engine).read() as tx:
                await tx.users.by_canonical_email("a@b.c")
    finally:
        await engine.dispose()


async def test_the_server_secret_is_made_once(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        first = await load_or_create_secret(engine, "k")
        assert len(first) == 32
        assert await load_or_create_secret(engine, "k") == first
        assert await load_or_create_secret(engine, "other") != first
    finally:
        await engine.dispose()


async def session_ids(store: SqlStore, user_id: int) -> set[str]:
    async with store.read() as tx:
        return {s.id for s in await tx.sessions.list_for_user(user_id)}


async def test_a_session_opens_only_on_the_hash_as_read_and_an_enabled_account(store: SqlStore) -> None:
    async with store.write() as tx:
        user = await tx.users.add(new_user(), NOW)
    assert await store.open_session(new_session(user.id, "s1"), b"1" * 32, user.password_hash)
    assert not await store.open_session(new_session(user.id, "s2"), b"2" * 32, "$argon2id$other")
    upgraded = "$argon2id$upgraded"
    assert await store.open_session(new_session(user.id, "s3"), b"3" * 32, user.password_hash, upgraded)
    async with store.read() as tx:
        stored = await tx.users.by_id(user.id)
    assert stored is not None and stored.password_hash == upgraded and stored.updated_at == NOW
    # The hash it replaced is gone: a login that read it before the upgrade opens nothing.
    assert not await store.open_session(new_session(user.id, "s4"), b"4" * 32, user.password_hash)
    async with store.write() as tx:
        await tx.users.set_disabled(user.id, True, NOW)
    assert not await store.open_session(new_session(user.id, "s5"), b"5" * 32, upgraded)
    assert await session_ids(store, user.id) == {"s1", "s3"}


@pytest.mark.parametrize("new_hash", [None, "$argon2id$upgraded"], ids=["plain", "rehash"])
async def test_a_session_waits_for_a_reset_in_progress_and_then_is_refused(
    store: SqlStore, new_hash: str | None
) -> None:
    """The reset commits while the login waits for it: the login must not overtake it, nor outlive it."""
    async with store.write() as tx:
        user = await tx.users.add(new_user(), NOW)
    async with store.write() as tx:
        await tx.users.set_password_hash(user.id, "$argon2id$reset", NOW)
        opening = asyncio.create_task(
            store.open_session(new_session(user.id), b"6" * 32, user.password_hash, new_hash)
        )
        await asyncio.sleep(0.3)
        assert not opening.done()  # behind the reset's lock
    assert await opening is False
    assert await session_ids(store, user.id) == set()
    async with store.read() as tx:
        stored = await tx.users.by_id(user.id)
    assert stored is not None and stored.password_hash == "$argon2id$reset"


async def test_a_statement_timeout_is_storage_unavailable(postgres_database: str) -> None:
    """A statement stuck behind a lock ends at the statement timeout as a 503, not a 500."""
    import asyncpg

    engine = create_engine(postgres_database, timeout=2, statement_timeout=0.3)
    store = SqlStore(engine)
    async with store.write() as tx:
        user = await tx.users.add(new_user(), NOW)
    blocker = await asyncpg.connect(postgres_database.replace("postgresql://", "postgres://", 1))
    try:
        async with blocker.transaction():
            await blocker.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user.id)
            with pytest.raises(StorageUnavailable):
                async with store.write() as tx:
                    await tx.users.set_disabled(user.id, True, NOW)
    finally:
        await blocker.close()
        await engine.dispose()
