"""Sessions in the ``sessions`` table: SqlSessions, found by token digest through a unique index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import Session, User
from doorward.storage.rows import FIND_SESSION, session_and_user, session_of
from doorward.storage.tables import sessions

# Built once, as rows.py's FIND_SESSION: every login inserts a session.
_ADD_SESSION = insert(sessions)


class SqlSessions:
    """Sessions in the ``sessions`` table, found through the unique index on ``token_digest``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, session: Session, token_digest: bytes) -> None:
        await self._conn.execute(_ADD_SESSION, session_values(session, token_digest))

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        row = (await self._conn.execute(FIND_SESSION, {"digest": token_digest})).first()
        return session_and_user(row._mapping) if row is not None else None

    async def list_for_user(self, user_id: int) -> list[Session]:
        rows = await self._conn.execute(
            select(*(c for c in sessions.c if c.name != "token_digest"))
            .where(sessions.c.user_id == user_id)
            .order_by(sessions.c.created_at.desc())
        )
        return [session_of(row._mapping) for row in rows]

    async def delete_by_id(self, user_id: int, session_id: str) -> bool:
        result = await self._conn.execute(
            delete(sessions).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
        )
        return result.rowcount > 0

    async def touch(self, session_id: str, now: datetime) -> None:
        # Only forward: with several instances, a touch that commits late must not move it back.
        await self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.last_seen_at < now)
            .values(last_seen_at=now)
        )

    async def delete(self, token_digest: bytes) -> bool:
        result = await self._conn.execute(delete(sessions).where(sessions.c.token_digest == token_digest))
        return result.rowcount > 0

    async def exists(self, session_id: str) -> bool:
        found = await self._conn.execute(select(sessions.c.id).where(sessions.c.id == session_id))
        return found.first() is not None

    async def count_active(self, now: datetime, idle_before: datetime | None) -> int:
        """Sessions neither expired nor (with ``idle_before``) idle: the metrics' active sessions."""
        condition = sessions.c.expires_at > now
        if idle_before is not None:
            condition = and_(condition, sessions.c.last_seen_at > idle_before)
        return int(await self._conn.scalar(select(func.count()).select_from(sessions).where(condition)) or 0)

    async def delete_expired(self, now: datetime, idle_before: datetime | None) -> int:
        condition = sessions.c.expires_at <= now
        if idle_before is not None:
            condition = or_(condition, sessions.c.last_seen_at <= idle_before)
        result = await self._conn.execute(delete(sessions).where(condition))
        return int(result.rowcount)

    async def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        statement = delete(sessions).where(sessions.c.user_id == user_id)
        if keep is not None:
            statement = statement.where(sessions.c.id != keep)
        result = await self._conn.execute(statement)
        return int(result.rowcount)


def session_values(session: Session, token_digest: bytes) -> dict[str, Any]:
    """The row of ``session`` under its column names (SqlStore.open_session binds them too)."""
    return {
        "id": session.id,
        "user_id": session.user_id,
        "token_digest": token_digest,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "client_address": session.client_address,
        "user_agent": session.user_agent,
        "aal": session.aal,
        "amr": " ".join(session.amr),
    }
