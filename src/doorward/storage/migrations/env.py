"""Alembic environment: runs migrations over doorward's async engine, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from doorward.storage.database import async_url, connect_args
from doorward.storage.tables import metadata

MIGRATION_LOCK = 0x646F6F72  # "door": the advisory lock every doorward instance migrates under


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Instances starting together queue here; each later one then finds the schema at head.
            # The lock belongs to the migration's transaction and ends with it, even on a crash.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def _migrate(database_url: str, pooler: str) -> None:
    url = async_url(database_url)
    args = connect_args(pooler=pooler) if url.get_backend_name() == "postgresql" else {}
    engine = create_async_engine(url, poolclass=NullPool, connect_args=args)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(
    _migrate(context.config.attributes["database_url"], context.config.attributes.get("pooler", "none"))
)
