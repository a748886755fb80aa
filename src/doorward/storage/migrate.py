"""Alembic, driven from code: ``doorward migrate`` and the tests call these, no alembic.ini needed."""

from __future__ import annotations

import asyncio
import fcntl
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from doorward.storage.database import async_url, connect_args

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, pooler: str = "none") -> Config:
    """An Alembic configuration for this database, pointing at doorward's migration scripts;
    ``pooler`` as DOORWARD_DB_POOLER (how the migrations connect to PostgreSQL)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    config.attributes["pooler"] = pooler
    return config


def upgrade(database_url: str, revision: str = "head", *, pooler: str = "none") -> None:
    """Bring the schema up to ``revision`` (the newest by default); safe to run from several processes."""
    with _sqlite_lock(database_url):
        command.upgrade(alembic_config(database_url, pooler), revision)


def downgrade(database_url: str, revision: str, *, pooler: str = "none") -> None:
    """Take the schema down to ``revision`` ("base" removes every table)."""
    with _sqlite_lock(database_url):
        command.downgrade(alembic_config(database_url, pooler), revision)


@functools.cache
def newest_revision() -> str:
    """The revision ``upgrade`` brings a database to (read from the scripts once per process:
    /readyz asks at every probe)."""
    return str(ScriptDirectory.from_config(alembic_config("")).get_current_head())


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this release's scripts know: one outside them was written by a newer release."""
    return frozenset(
        script.revision for script in ScriptDirectory.from_config(alembic_config("")).walk_revisions()
    )


def schema_current(revision: str | None) -> bool:
    """A schema this release may serve: at its newest revision, or at one a newer release migrated to
    (in a rolling upgrade the old instances must stay ready while the new ones start)."""
    return revision is not None and (revision == newest_revision() or revision not in known_revisions())


def current_revision(database_url: str, timeout: float, *, pooler: str = "none") -> str | None:
    """The database's schema revision, None when it has none (never migrated); an exception when
    the database does not answer within ``timeout`` seconds."""

    async def read() -> str | None:
        args = (
            connect_args(pooler=pooler) if make_url(database_url).get_backend_name() == "postgresql" else {}
        )
        engine = create_async_engine(async_url(database_url), poolclass=NullPool, connect_args=args)
        try:
            async with asyncio.timeout(timeout), engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


@contextmanager
def _sqlite_lock(database_url: str) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (PostgreSQL uses an advisory lock).

    SQLite DDL under Alembic is not transactional, so two processes migrating at once would both
    try to create the same tables. A lock file beside the database makes the second one wait.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        yield
        return
    lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate-lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
