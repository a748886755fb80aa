"""The admin API's keys in the ``admin_keys`` table, by the digest of the key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.admin_keys import AdminKeyNameTaken
from doorward.core.models import AdminKey, AdminScope
from doorward.storage.tables import admin_keys, utc

_COLUMNS = (admin_keys.c.name, admin_keys.c.scope, admin_keys.c.created_at, admin_keys.c.revoked_at)


def _key(row: Any) -> AdminKey:
    created_at = utc(row.created_at)
    assert created_at is not None
    return AdminKey(row.name, AdminScope(row.scope), created_at, utc(row.revoked_at))


class SqlAdminKeys:
    """Admin keys in ``admin_keys``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, key: AdminKey, digest: bytes) -> None:
        try:
            await self._conn.execute(
                insert(admin_keys).values(
                    name=key.name,
                    scope=key.scope.value,
                    digest=digest,
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                )
            )
        except IntegrityError as exc:  # the unique name (a digest collision of 256 random bits: never)
            raise AdminKeyNameTaken() from exc

    async def by_digest(self, digest: bytes) -> AdminKey | None:
        row = (await self._conn.execute(select(*_COLUMNS).where(admin_keys.c.digest == digest))).first()
        return _key(row) if row else None

    async def all(self) -> list[AdminKey]:
        rows = await self._conn.execute(select(*_COLUMNS).order_by(admin_keys.c.id))
        return [_key(row) for row in rows]

    async def revoke(self, name: str, now: datetime) -> AdminKey | None:
        await self._conn.execute(
            update(admin_keys)
            .where(admin_keys.c.name == name, admin_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = (await self._conn.execute(select(*_COLUMNS).where(admin_keys.c.name == name))).first()
        return _key(row) if row else None
