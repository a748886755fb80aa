"""The devices each account logged in from, in the ``known_devices`` table, by digest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import Recognition
from doorward.storage.tables import known_devices, utc


class SqlKnownDevices:
    """Known devices in ``known_devices``: one row per account and device, with its last login."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def remember(self, user_id: int, digest: bytes, at: datetime, fresh_since: datetime) -> Recognition:
        row = known_devices.c
        last_seen = (
            await self._conn.execute(
                select(row.last_seen_at).where(row.user_id == user_id, row.digest == digest)
            )
        ).scalar_one_or_none()
        if last_seen is not None:
            await self._conn.execute(
                update(known_devices)
                .where(row.user_id == user_id, row.digest == digest)
                .values(last_seen_at=at)
            )
            return Recognition.KNOWN if (utc(last_seen) or at) >= fresh_since else Recognition.NEW
        first = not (await self._conn.execute(select(exists().where(row.user_id == user_id)))).scalar()
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        await self._conn.execute(
            insert(known_devices)
            .values(user_id=user_id, digest=digest, last_seen_at=at)
            .on_conflict_do_update(index_elements=[row.user_id, row.digest], set_={"last_seen_at": at})
        )
        return Recognition.FIRST if first else Recognition.NEW

    async def last_seen(self, user_id: int, digest: bytes) -> datetime | None:
        row = known_devices.c
        found = await self._conn.execute(
            select(row.last_seen_at).where(row.user_id == user_id, row.digest == digest)
        )
        return utc(found.scalar_one_or_none())

    async def delete_for_user(self, user_id: int) -> int:
        result = await self._conn.execute(delete(known_devices).where(known_devices.c.user_id == user_id))
        return int(result.rowcount)

    async def delete_before(self, at: datetime) -> int:
        result = await self._conn.execute(delete(known_devices).where(known_devices.c.last_seen_at < at))
        return int(result.rowcount)
