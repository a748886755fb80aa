"""The audit trail read back: the administrator's query (newest first, keyset pages) and the
retention's pruning. Written by audit.py's sink, in batches."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.admin_records import AuditEntry
from doorward.storage.tables import audit_events


def _entry(row: Any) -> AuditEntry:
    try:
        detail = json.loads(row.detail)
    except ValueError:  # written by doorward as JSON; a row edited by hand still reads
        detail = {"text": row.detail}
    return AuditEntry(
        id=row.id,
        at=row.at,
        event=row.event,
        user_id=row.user_id,
        client=row.client_address,
        detail=detail if isinstance(detail, dict) else {"value": detail},
    )


class SqlAuditTrail:
    """The ``audit_events`` table, read and pruned."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def query(
        self,
        *,
        user_id: int | None,
        event: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[AuditEntry]:
        c = audit_events.c
        statement = select(audit_events).order_by(c.at.desc(), c.id.desc()).limit(limit)
        if user_id is not None:
            statement = statement.where(c.user_id == user_id)
        if event is not None:
            statement = statement.where(c.event == event)
        if since is not None:
            statement = statement.where(c.at >= since)
        if until is not None:
            statement = statement.where(c.at < until)
        if before is not None:
            # Keyset on (at, id): events written in one batch share no order but their ids'.
            at, entry_id = before
            statement = statement.where(or_(c.at < at, and_(c.at == at, c.id < entry_id)))
        return [_entry(row) for row in await self._conn.execute(statement)]

    async def delete_before(self, at: datetime) -> int:
        result = await self._conn.execute(delete(audit_events).where(audit_events.c.at < at))
        return int(result.rowcount)
