"""Accounts in the ``users`` table: SqlUsers, with the statements every login runs built once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import NewUser, User
from doorward.storage.errors import unique_email
from doorward.storage.rows import user_of
from doorward.storage.tables import users

# Built once, as rows.py's FIND_SESSION: a statement built per call costs more CPU than
# answering it. These are the statements of every login.
USER_BY_EMAIL = select(users).where(users.c.email_canonical == bindparam("email"))
# A no-op update: its WHERE re-checks the row and its lock orders this transaction against a
# concurrent reset or change of the same user (on SQLite, BEGIN IMMEDIATE already does).
CONFIRM_CREDENTIALS = (
    update(users)
    .where(
        users.c.id == bindparam("user_id"),
        users.c.password_hash == bindparam("seen_hash"),
        users.c.disabled.is_(False),
    )
    .values(updated_at=users.c.updated_at)
)


def _user(row: Any) -> User:
    return user_of(row._mapping)


class SqlUsers:
    """Accounts in the ``users`` table."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def by_canonical_email(self, email_canonical: str) -> User | None:
        result = await self._conn.execute(USER_BY_EMAIL, {"email": email_canonical})
        row = result.first()
        return _user(row) if row else None

    async def by_id(self, user_id: int, *, for_update: bool = False) -> User | None:
        query = select(users).where(users.c.id == user_id)
        row = (await self._conn.execute(query.with_for_update() if for_update else query)).first()
        return _user(row) if row else None

    async def add(self, new: NewUser, now: datetime) -> User:
        with unique_email():
            result = await self._conn.execute(
                insert(users).values(**_new_user_values(new, now)).returning(*users.c)
            )
        return _user(result.one())

    async def add_many(self, rows: Sequence[NewUser], now: datetime) -> int:
        with unique_email():
            await self._conn.execute(insert(users), [_new_user_values(new, now) for new in rows])
        return len(rows)

    async def replace_password_hash(self, user_id: int, old: str, new: str, now: datetime) -> bool:
        result = await self._conn.execute(
            update(users)
            .where(users.c.id == user_id, users.c.password_hash == old)
            .values(password_hash=new, updated_at=now, **_NEW_PASSWORD)
        )
        return result.rowcount == 1

    async def confirm_credentials(self, user_id: int, seen_hash: str) -> bool:
        parameters = {"user_id": user_id, "seen_hash": seen_hash}
        return (await self._conn.execute(CONFIRM_CREDENTIALS, parameters)).rowcount == 1

    async def set_password_hash(self, user_id: int, new: str, now: datetime) -> None:
        await self._conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=new, updated_at=now, **_NEW_PASSWORD)
        )

    async def claim_breach_check(self, user_id: int, now: datetime, due_before: datetime) -> bool:
        result = await self._conn.execute(
            update(users)
            .where(
                users.c.id == user_id,
                or_(users.c.breach_checked_at.is_(None), users.c.breach_checked_at <= due_before),
            )
            .values(breach_checked_at=now)
        )
        return result.rowcount == 1

    async def undo_breach_check(self, user_id: int, claimed_at: datetime, before: datetime | None) -> None:
        await self._conn.execute(
            update(users)
            .where(users.c.id == user_id, users.c.breach_checked_at == claimed_at)
            .values(breach_checked_at=before)
        )

    async def mark_compromised(self, user_id: int, seen_hash: str, now: datetime) -> bool:
        result = await self._conn.execute(
            update(users)
            .where(
                users.c.id == user_id,
                users.c.password_hash == seen_hash,
                users.c.password_compromised_at.is_(None),
            )
            .values(password_compromised_at=now)
        )
        return result.rowcount == 1

    async def mark_verified(self, user_id: int, now: datetime) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(email_verified_at=now, updated_at=now)
        )

    async def set_email(self, user_id: int, email: str, email_canonical: str, now: datetime) -> None:
        with unique_email():
            await self._conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(email=email, email_canonical=email_canonical, email_verified_at=now, updated_at=now)
            )

    async def set_disabled(self, user_id: int, disabled: bool, now: datetime) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(disabled=disabled, updated_at=now)
        )

    async def search(self, prefix: str, after_id: int | None, limit: int) -> list[User]:
        # Keyset pagination on the primary key: each page is one index range, however deep, and
        # the cursor carries an id, not an email (it travels in URLs, which access logs keep).
        statement = select(users).order_by(users.c.id).limit(limit)
        if prefix:
            statement = statement.where(users.c.email_canonical.startswith(prefix, autoescape=True))
        if after_id is not None:
            statement = statement.where(users.c.id > after_id)
        return [_user(row) for row in await self._conn.execute(statement)]

    async def delete(self, user_id: int) -> bool:
        result = await self._conn.execute(delete(users).where(users.c.id == user_id))
        return result.rowcount == 1


_NEW_PASSWORD: dict[str, Any] = {"breach_checked_at": None, "password_compromised_at": None}
"""What a new password resets: the breach check's verdict was about the old one."""


def _new_user_values(new: NewUser, now: datetime) -> dict[str, Any]:
    return {
        "email": new.email,
        "email_canonical": new.email_canonical,
        "password_hash": new.password_hash,
        "disabled": False,
        "created_at": now,
        "updated_at": now,
        "email_verified_at": now if new.email_verified else None,
    }
