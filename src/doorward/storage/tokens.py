"""Mailed tokens (verification, reset) in the ``account_tokens`` table, by digest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import AccountToken, TokenPurpose
from doorward.storage.tables import account_tokens


def _token(row: Any) -> AccountToken:
    return AccountToken(
        bytes(row.digest),
        row.user_id,
        TokenPurpose(row.purpose),
        row.created_at,
        row.expires_at,
        row.detail,
    )


class SqlTokens:
    """Mailed tokens in ``account_tokens``, by digest."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, token: AccountToken) -> None:
        await self._conn.execute(
            insert(account_tokens).values(
                digest=token.digest,
                user_id=token.user_id,
                purpose=token.purpose.value,
                created_at=token.created_at,
                expires_at=token.expires_at,
                detail=token.detail,
            )
        )

    async def find(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        row = (
            await self._conn.execute(
                select(account_tokens).where(
                    account_tokens.c.digest == digest, account_tokens.c.purpose == purpose.value
                )
            )
        ).first()
        return _token(row) if row else None

    async def take(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        row = (
            await self._conn.execute(
                delete(account_tokens)
                .where(account_tokens.c.digest == digest, account_tokens.c.purpose == purpose.value)
                .returning(*account_tokens.c)
            )
        ).first()
        return _token(row) if row else None

    async def delete_expired(self, now: datetime) -> int:
        result = await self._conn.execute(delete(account_tokens).where(account_tokens.c.expires_at <= now))
        return int(result.rowcount)

    async def delete_for_user(self, user_id: int, purpose: TokenPurpose) -> int:
        result = await self._conn.execute(
            delete(account_tokens).where(
                account_tokens.c.user_id == user_id, account_tokens.c.purpose == purpose.value
            )
        )
        return int(result.rowcount)
