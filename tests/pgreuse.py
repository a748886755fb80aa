"""PostgreSQL test databases used again: a test's database, emptied, becomes a later test's.

Cloning the migrated template (CREATE DATABASE ... TEMPLATE) and dropping the clone cost about 0.27 s a
test on a small machine, some 600 times a run; deleting the rows of a few empty-ish tables costs a few
milliseconds. A database is used again only when nothing is connected to it any more (a server still
running could write after the reset), its schema, settings and revision are a fresh clone's (compared
by fingerprint), and its rows are gone and its sequences restarted; otherwise it is dropped, as before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

FINGERPRINT = """
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
    SELECT format('relation %s.%s %s %s %s %s', n.nspname, c.relname, c.relkind, c.relpersistence,
                  c.relacl, pg_get_userbyid(c.relowner))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
    UNION ALL
    SELECT format('column %s.%s.%s %s %s %s', table_schema, table_name, column_name, data_type, is_nullable,
                  column_default)
    FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT format('index %s.%s %s', schemaname, indexname, indexdef)
    FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace <> 'pg_catalog'::regnamespace
    UNION ALL
    SELECT format('sequence %s.%s %s %s %s %s %s', schemaname, sequencename, start_value, increment_by,
                  min_value, max_value, cycle)
    FROM pg_sequences
    UNION ALL
    SELECT format('function %s', p.oid::regprocedure)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT format('trigger %s %s %s', tgrelid::regclass, tgname, tgenabled)
    FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT format('policy %s %s', polrelid::regclass, polname) FROM pg_policy
    UNION ALL
    SELECT format('rule %s.%s %s', schemaname, tablename, rulename) FROM pg_rules
    UNION ALL
    SELECT format('type %s.%s', n.nspname, t.typname)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    UNION ALL
    SELECT format('enum %s %s %s', enumtypid::regtype, enumsortorder, enumlabel) FROM pg_enum
    UNION ALL
    SELECT format('namespace %s %s', nspname, nspacl) FROM pg_namespace
    UNION ALL
    SELECT format('extension %s %s', extname, extversion) FROM pg_extension
    UNION ALL
    SELECT format('database %s %s %s', datallowconn, datconnlimit, datacl)
    FROM pg_database WHERE datname = current_database()
    UNION ALL
    SELECT format('setting %s %s', setrole, setconfig) FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    SELECT format('revision %s', version_num) FROM alembic_version
) AS items (item)
"""
"""What a test could change of a database besides its rows; the last line fails where Alembic's table
has gone (a downgrade to base), which counts as changed."""

TABLES = """
SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""
SEQUENCES = "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences WHERE schemaname = 'public'"
OTHERS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""
QUIET_WITHIN = 0.5
"""Seconds for the connections a test closed to end (the server ends a backend just after its client
leaves); anything connected beyond that is a process still running, and the database is dropped."""


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url.replace("postgresql://", "postgres://", 1), timeout=5)


async def _fresh_state(url: str) -> tuple[str, bool]:
    """A fresh clone's fingerprint, and whether any of its tables has rows (none has, today)."""
    conn = await _connect(url)
    try:
        fingerprint = str(await conn.fetchval(FINGERPRINT))
        tables = [name for (name,) in await conn.fetch(TABLES)]
        # Names quoted by the server (format's %I), not anyone's input.
        seeded = any([await conn.fetchval(f"SELECT EXISTS (SELECT FROM {table})") for table in tables])  # noqa: S608
        return fingerprint, seeded
    finally:
        await conn.close()


async def _emptied(url: str, reference: str) -> bool:
    """Whether the database at ``url`` is now as a fresh clone: False leaves it to be dropped."""
    try:
        conn = await _connect(url)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False  # ALLOW_CONNECTIONS false, say
    try:
        deadline = time.monotonic() + QUIET_WITHIN
        while await conn.fetchval(OTHERS):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        if await conn.fetchval(FINGERPRINT) != reference:
            return False
        async with conn.transaction():
            # Rows in any order: no foreign key is checked meanwhile (a superuser's right; else dropped).
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL lock_timeout = '2s'")  # a lock held on (a prepared transaction's)
            for (table,) in await conn.fetch(TABLES):  # quoted by the server (format's %I)
                await conn.execute(f"DELETE FROM {table}")  # noqa: S608
            for (sequence,) in await conn.fetch(SEQUENCES):
                await conn.execute(f"ALTER SEQUENCE {sequence} RESTART")
        return True
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    finally:
        await conn.close()


@dataclass
class DatabasePool:
    """Clones of ``template`` for tests: taken one per test, given back after it (see the module)."""

    template: str
    url_of: Callable[[str], str]
    admin: Callable[..., None]
    free: list[str] = field(default_factory=list)
    reference: str | None = None
    reusable: bool = True

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"doorward_test_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        if self.reference is None:
            self.reference, seeded = asyncio.run(_fresh_state(self.url_of(name)))
            self.reusable = not seeded  # rows of a migration's would be deleted with the test's
        return name

    def give_back(self, name: str) -> None:
        if self.reusable and self.reference and asyncio.run(_emptied(self.url_of(name), self.reference)):
            self.free.append(name)
        else:
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        while self.free:
            self.admin(f'DROP DATABASE IF EXISTS "{self.free.pop()}" WITH (FORCE)')
