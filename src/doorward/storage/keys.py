"""Server-side secrets kept in the database, created once on first start."""

from __future__ import annotations

import secrets as random_source

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from doorward.storage.errors import secrets_translated
from doorward.storage.tables import secrets


async def load_or_create_secret(engine: AsyncEngine, name: str) -> bytes:
    """The secret called ``name``; the first caller generates 32 random bytes and every later one reads them.

    Safe when several instances start at once: the primary key lets one insert win, the others read it.
    """
    with secrets_translated():
        return await _load_or_create(engine, name)


async def _load_or_create(engine: AsyncEngine, name: str) -> bytes:
    async with engine.connect() as conn:
        value = (await conn.execute(select(secrets.c.value).where(secrets.c.name == name))).scalar()
    if value is None:
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(secrets).values(name=name, value=random_source.token_hex(32)))
        except IntegrityError:
            pass  # another instance created it first; read theirs below
        async with engine.connect() as conn:
            stmt = select(secrets.c.value).where(secrets.c.name == name)
            value = (await conn.execute(stmt)).scalar_one()
    return bytes.fromhex(value)
