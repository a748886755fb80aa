"""The devices each account logged in from, in the ``known_devices`` table, by digest: noted by a
login's own write of its session (``SqlKnownDevices.note``; on PostgreSQL ``noting_ctes``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, bindparam, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import DeviceNote, Recognition
from doorward.storage.tables import UTCDateTime, known_devices, utc

# PostgreSQL: a login's device noted in its session's statement (store.open_session_statement).
# Parameters named after no column, as that statement's are.
_DEVICE = bindparam("device_digest", type_=LargeBinary)
_ACCOUNT = bindparam("device_user", type_=known_devices.c.user_id.type)


def noting_ctes(confirmed: Any) -> tuple[list[Any], list[Any]]:
    """The CTEs that remember a login's device in its session's statement, and the columns its
    RETURNING adds for ``recognition``: the device's last login and whether the account had any
    device, both as they were before the statement (a statement's CTEs share one snapshot).

    The device's row is written only if the session is (``confirmed``: the credentials' check),
    and only if it was not noted since ``device_noted_since``; a write only moves it forward.
    """
    row = known_devices.c
    prior = select(row.last_seen_at).where(row.user_id == _ACCOUNT, row.digest == _DEVICE).cte("device")
    fresh = exists(
        select(prior.c.last_seen_at).where(
            prior.c.last_seen_at > bindparam("device_noted_since", type_=UTCDateTime())
        )
    )
    noted = postgresql.insert(known_devices).from_select(
        ["user_id", "digest", "last_seen_at"],
        select(confirmed.c.id, _DEVICE, bindparam("device_at", type_=UTCDateTime())).where(~fresh),
    )
    noted = noted.on_conflict_do_update(
        index_elements=[row.user_id, row.digest],
        set_={"last_seen_at": noted.excluded.last_seen_at},
        where=row.last_seen_at < noted.excluded.last_seen_at,
    )
    columns = [
        select(prior.c.last_seen_at).scalar_subquery().label("device_seen"),
        exists(select(row.digest).where(row.user_id == _ACCOUNT)).label("devices"),
    ]
    return [prior, noted.cte("noted")], columns


def noting_values(user_id: int, device: DeviceNote) -> dict[str, Any]:
    """The parameters of ``noting_ctes``."""
    return {
        "device_user": user_id,
        "device_digest": device.digest,
        "device_at": device.at,
        "device_noted_since": device.noted_since,
    }


def recognition(device: DeviceNote, row: Mapping[str, Any]) -> Recognition:
    """The Recognition of ``device`` from the columns ``noting_ctes`` added to a RETURNING row."""
    seen = utc(row["device_seen"])
    if seen is not None:
        return Recognition.KNOWN if seen >= device.known_since else Recognition.NEW
    return Recognition.NEW if row["devices"] else Recognition.FIRST


class SqlKnownDevices:
    """Known devices in ``known_devices``: one row per account and device, with its last login."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def note(self, user_id: int, device: DeviceNote) -> Recognition:
        """In a login's write transaction (SQLite's way; on PostgreSQL ``noting_ctes`` does the same
        in the session's statement): read the device's row, and write it unless noted lately."""
        row = known_devices.c
        seen = await self.last_seen(user_id, device.digest)
        if seen is not None:
            if seen <= device.noted_since:
                await self._conn.execute(
                    update(known_devices)
                    .where(row.user_id == user_id, row.digest == device.digest, row.last_seen_at < device.at)
                    .values(last_seen_at=device.at)
                )
            return Recognition.KNOWN if seen >= device.known_since else Recognition.NEW
        first = not (await self._conn.execute(select(exists().where(row.user_id == user_id)))).scalar()
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        noted = insert(known_devices).values(user_id=user_id, digest=device.digest, last_seen_at=device.at)
        await self._conn.execute(
            noted.on_conflict_do_update(
                index_elements=[row.user_id, row.digest],
                set_={"last_seen_at": noted.excluded.last_seen_at},
                where=row.last_seen_at < noted.excluded.last_seen_at,
            )
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
