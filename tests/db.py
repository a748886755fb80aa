"""What a test checks behind the API, read straight from the database: SQLite or PostgreSQL alike."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from doorward.storage.database import async_url


async def fetch(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one statement (``:name`` parameters) and return its rows; writes are committed."""
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


def fetch_sync(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """``fetch`` for tests that are not coroutines."""
    return asyncio.run(fetch(database_url, sql, **params))


def table_names(database_url: str) -> set[str]:
    """The tables of the database, whatever its dialect."""
    if database_url.startswith("sqlite"):
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {name for (name,) in fetch_sync(database_url, sql)}


def schema_tables() -> set[str]:
    """The tables a migrated database has: doorward's plus Alembic's version table."""
    from doorward.storage.tables import metadata

    return set(metadata.tables) | {"alembic_version"}


def head_revision() -> str:
    """The newest migration's revision id."""
    from alembic.script import ScriptDirectory

    from doorward.storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head
