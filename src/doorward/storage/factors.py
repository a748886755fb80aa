"""Second factors in ``totp_factors``, ``recovery_codes`` and ``mfa_challenges`` (and the flag on
``users``): what the core's ``Factors`` port asks for. Every "use" is one conditional UPDATE, so
it holds under concurrent requests and several instances."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import MfaChallenge, RecoveryCode, TotpFactor
from doorward.storage.tables import mfa_challenges, recovery_codes, totp_factors, users


def _totp(row: Any) -> TotpFactor:
    return TotpFactor(row.user_id, bytes(row.secret), row.confirmed_at, row.last_step, row.created_at)


def _challenge(row: Any) -> MfaChallenge:
    return MfaChallenge(
        bytes(row.digest),
        row.user_id,
        row.created_at,
        row.expires_at,
        row.attempts,
        row.used_at,
        row.first_factor,
    )


class SqlFactors:
    """The ``Factors`` port on one connection (inside the caller's transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # --- TOTP ------------------------------------------------------------------------------------

    async def totp(self, user_id: int) -> TotpFactor | None:
        row = (
            await self._conn.execute(select(totp_factors).where(totp_factors.c.user_id == user_id))
        ).first()
        return _totp(row) if row is not None else None

    async def save_pending_totp(self, user_id: int, secret: bytes, now: datetime) -> bool:
        # One upsert whose update applies only to a pending row: a confirmed factor is never
        # overwritten, and two set-ups at once do not trip over the primary key.
        dialect_insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        pending = dialect_insert(totp_factors).values(
            user_id=user_id, secret=secret, confirmed_at=None, last_step=0, created_at=now
        )
        statement = pending.on_conflict_do_update(
            index_elements=[totp_factors.c.user_id],
            set_={
                "secret": pending.excluded.secret,
                "last_step": 0,
                "created_at": pending.excluded.created_at,
            },
            where=totp_factors.c.confirmed_at.is_(None),
        ).returning(totp_factors.c.user_id)
        return (await self._conn.execute(statement)).first() is not None

    async def confirm_totp(self, user_id: int, secret: bytes, step: int, now: datetime) -> bool:
        result = await self._conn.execute(
            update(totp_factors)
            .where(
                totp_factors.c.user_id == user_id,
                totp_factors.c.confirmed_at.is_(None),
                totp_factors.c.secret == secret,
            )
            .values(confirmed_at=now, last_step=step)
        )
        return result.rowcount == 1

    async def use_totp_step(self, user_id: int, step: int) -> bool:
        result = await self._conn.execute(
            update(totp_factors)
            .where(
                totp_factors.c.user_id == user_id,
                totp_factors.c.confirmed_at.is_not(None),
                totp_factors.c.last_step < step,
            )
            .values(last_step=step)
        )
        return result.rowcount == 1

    async def replace_totp_secret(self, user_id: int, old: bytes, new: bytes) -> bool:
        result = await self._conn.execute(
            update(totp_factors)
            .where(totp_factors.c.user_id == user_id, totp_factors.c.secret == old)
            .values(secret=new)
        )
        return result.rowcount == 1

    async def delete_totp(self, user_id: int) -> bool:
        result = await self._conn.execute(delete(totp_factors).where(totp_factors.c.user_id == user_id))
        return result.rowcount > 0

    async def set_mfa_enabled(self, user_id: int, enabled: bool, now: datetime) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(mfa_enabled=enabled, updated_at=now)
        )

    # --- recovery codes --------------------------------------------------------------------------

    async def recovery_codes(self, user_id: int) -> list[RecoveryCode]:
        rows = await self._conn.execute(
            select(recovery_codes)
            .where(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))
            .order_by(recovery_codes.c.id)
        )
        return [RecoveryCode(row.id, row.user_id, row.code_hash, row.created_at, row.used_at) for row in rows]

    async def replace_recovery_codes(self, user_id: int, code_hashes: Sequence[str], now: datetime) -> None:
        await self.delete_recovery_codes(user_id)
        if not code_hashes:
            return
        await self._conn.execute(
            insert(recovery_codes),
            [{"user_id": user_id, "code_hash": code_hash, "created_at": now} for code_hash in code_hashes],
        )

    async def use_recovery_code(self, code_id: int, now: datetime) -> bool:
        result = await self._conn.execute(
            update(recovery_codes)
            .where(recovery_codes.c.id == code_id, recovery_codes.c.used_at.is_(None))
            .values(used_at=now)
        )
        return result.rowcount == 1

    async def delete_recovery_codes(self, user_id: int) -> int:
        result = await self._conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        return int(result.rowcount)

    # --- challenges (mfaTokens) ------------------------------------------------------------------

    async def add_challenge(self, challenge: MfaChallenge, seen_hash: str) -> bool:
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already orders writers): a reset, change
        # or disable of this user either committed before, and the row no longer matches, or waits
        # for this transaction and then deletes the challenge with the user's others.
        confirmed = await self._conn.execute(
            select(users.c.id)
            .where(
                users.c.id == challenge.user_id,
                users.c.password_hash == seen_hash,
                users.c.disabled.is_(False),
            )
            .with_for_update()
        )
        if confirmed.first() is None:
            return False
        await self._conn.execute(
            insert(mfa_challenges).values(
                digest=challenge.digest,
                user_id=challenge.user_id,
                created_at=challenge.created_at,
                expires_at=challenge.expires_at,
                attempts=challenge.attempts,
                used_at=challenge.used_at,
                first_factor=challenge.first_factor,
            )
        )
        return True

    async def challenge(self, digest: bytes) -> MfaChallenge | None:
        row = (
            await self._conn.execute(select(mfa_challenges).where(mfa_challenges.c.digest == digest))
        ).first()
        return _challenge(row) if row is not None else None

    async def count_attempt(self, digest: bytes, now: datetime, max_attempts: int) -> bool:
        result = await self._conn.execute(
            update(mfa_challenges)
            .where(
                mfa_challenges.c.digest == digest,
                mfa_challenges.c.used_at.is_(None),
                mfa_challenges.c.expires_at > now,
                mfa_challenges.c.attempts < max_attempts,
            )
            .values(attempts=mfa_challenges.c.attempts + 1)
        )
        return result.rowcount == 1

    async def use_challenge(self, digest: bytes, now: datetime) -> bool:
        result = await self._conn.execute(
            update(mfa_challenges)
            .where(
                mfa_challenges.c.digest == digest,
                mfa_challenges.c.used_at.is_(None),
                mfa_challenges.c.expires_at > now,
            )
            .values(used_at=now)
        )
        return result.rowcount == 1

    async def delete_challenges(self, user_id: int) -> int:
        result = await self._conn.execute(delete(mfa_challenges).where(mfa_challenges.c.user_id == user_id))
        return int(result.rowcount)

    async def delete_expired_challenges(self, now: datetime) -> int:
        result = await self._conn.execute(delete(mfa_challenges).where(mfa_challenges.c.expires_at <= now))
        return int(result.rowcount)
