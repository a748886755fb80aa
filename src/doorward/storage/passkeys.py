"""Passkeys in ``passkeys`` and the challenges of their ceremonies in ``webauthn_challenges``: what
the core's ``Passkeys`` port asks for. Taking a challenge and recording a use are each one
conditional UPDATE, so they hold under concurrent requests and several instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import CeremonyPurpose, Passkey, WebauthnChallenge
from doorward.storage.tables import passkeys, webauthn_challenges


def _passkey(row: Any) -> Passkey:
    return Passkey(
        id=row.id,
        user_id=row.user_id,
        credential_id=bytes(row.credential_id),
        public_key=bytes(row.public_key),
        sign_count=row.sign_count,
        transports=tuple(row.transports.split()),
        aaguid=row.aaguid,
        backup_eligible=bool(row.backup_eligible),
        backed_up=bool(row.backed_up),
        user_handle=bytes(row.user_handle),
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def _challenge(row: Any) -> WebauthnChallenge:
    return WebauthnChallenge(
        digest=bytes(row.digest),
        purpose=CeremonyPurpose(row.purpose),
        created_at=row.created_at,
        expires_at=row.expires_at,
        user_id=row.user_id,
        mfa_digest=bytes(row.mfa_digest) if row.mfa_digest is not None else None,
        user_handle=bytes(row.user_handle) if row.user_handle is not None else None,
        used_at=row.used_at,
    )


class SqlPasskeys:
    """The ``Passkeys`` port on one connection (inside the caller's transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # --- credentials -----------------------------------------------------------------------------

    async def add(self, passkey: Passkey) -> bool:
        # ON CONFLICT DO NOTHING, not a caught IntegrityError: on PostgreSQL that would abort the
        # caller's transaction.
        dialect_insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(passkeys)
            .values(
                id=passkey.id,
                user_id=passkey.user_id,
                credential_id=passkey.credential_id,
                public_key=passkey.public_key,
                sign_count=passkey.sign_count,
                transports=" ".join(passkey.transports),
                aaguid=passkey.aaguid,
                backup_eligible=passkey.backup_eligible,
                backed_up=passkey.backed_up,
                user_handle=passkey.user_handle,
                name=passkey.name,
                created_at=passkey.created_at,
                last_used_at=passkey.last_used_at,
            )
            .on_conflict_do_nothing(index_elements=[passkeys.c.credential_id])
            .returning(passkeys.c.id)
        )
        return (await self._conn.execute(statement)).first() is not None

    async def for_user(self, user_id: int) -> list[Passkey]:
        rows = await self._conn.execute(
            select(passkeys)
            .where(passkeys.c.user_id == user_id)
            .order_by(passkeys.c.created_at, passkeys.c.id)
        )
        return [_passkey(row) for row in rows]

    async def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        row = (
            await self._conn.execute(select(passkeys).where(passkeys.c.credential_id == credential_id))
        ).first()
        return _passkey(row) if row is not None else None

    async def rename(self, user_id: int, passkey_id: str, name: str) -> bool:
        result = await self._conn.execute(
            update(passkeys)
            .where(passkeys.c.id == passkey_id, passkeys.c.user_id == user_id)
            .values(name=name)
        )
        return result.rowcount == 1

    async def delete(self, user_id: int, passkey_id: str) -> bool:
        result = await self._conn.execute(
            delete(passkeys).where(passkeys.c.id == passkey_id, passkeys.c.user_id == user_id)
        )
        return result.rowcount == 1

    async def delete_for_user(self, user_id: int) -> int:
        result = await self._conn.execute(delete(passkeys).where(passkeys.c.user_id == user_id))
        return int(result.rowcount)

    async def record_use(self, passkey_id: str, sign_count: int, backed_up: bool, now: datetime) -> bool:
        counted = passkeys.c.sign_count < sign_count
        result = await self._conn.execute(
            update(passkeys)
            .where(
                passkeys.c.id == passkey_id,
                counted if sign_count else or_(counted, passkeys.c.sign_count == 0),
            )
            .values(sign_count=sign_count, backed_up=backed_up, last_used_at=now)
        )
        return result.rowcount == 1

    # --- challenges ------------------------------------------------------------------------------

    async def add_challenge(self, challenge: WebauthnChallenge) -> None:
        await self._conn.execute(
            insert(webauthn_challenges).values(
                digest=challenge.digest,
                purpose=challenge.purpose.value,
                user_id=challenge.user_id,
                mfa_digest=challenge.mfa_digest,
                user_handle=challenge.user_handle,
                created_at=challenge.created_at,
                expires_at=challenge.expires_at,
                used_at=challenge.used_at,
            )
        )

    async def challenge(self, digest: bytes) -> WebauthnChallenge | None:
        row = (
            await self._conn.execute(
                select(webauthn_challenges).where(webauthn_challenges.c.digest == digest)
            )
        ).first()
        return _challenge(row) if row is not None else None

    async def take_challenge(
        self,
        digest: bytes,
        purpose: CeremonyPurpose,
        now: datetime,
        *,
        user_id: int | None = None,
        mfa_digest: bytes | None = None,
    ) -> bool:
        c = webauthn_challenges.c
        result = await self._conn.execute(
            update(webauthn_challenges)
            .where(
                c.digest == digest,
                c.purpose == purpose.value,
                c.used_at.is_(None),
                c.expires_at > now,
                c.user_id.is_(None) if user_id is None else c.user_id == user_id,
                c.mfa_digest.is_(None) if mfa_digest is None else c.mfa_digest == mfa_digest,
            )
            .values(used_at=now)
        )
        return result.rowcount == 1

    async def delete_challenges(self, user_id: int) -> int:
        result = await self._conn.execute(
            delete(webauthn_challenges).where(webauthn_challenges.c.user_id == user_id)
        )
        return int(result.rowcount)

    async def delete_expired_challenges(self, now: datetime) -> int:
        result = await self._conn.execute(
            delete(webauthn_challenges).where(webauthn_challenges.c.expires_at <= now)
        )
        return int(result.rowcount)
