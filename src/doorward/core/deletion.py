"""Deleting an account: every row of it at once, and one audit event that keeps its id, never its email.

The one code path for the administrator's ``users delete`` (and ``DELETE /admin/users/{id}``) and the
user's own deletion (issue 23): what goes must not depend on who asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from doorward.core.admin_records import Actor
from doorward.core.deps import Deps
from doorward.core.errors import UserNotFound
from doorward.core.models import TokenPurpose, User


@dataclass(frozen=True)
class DeletedAccount:
    """What a deletion removed: the account as it was (for the caller's answer) and its counts."""

    user: User
    sessions_ended: int
    passkeys_removed: int


async def delete_account(deps: Deps, user: User, *, by: str, actor: Actor | None = None) -> DeletedAccount:
    """Remove ``user`` with its sessions, mailed tokens, second factors, passkeys, ceremonies and
    throttle counters, in one transaction (the counters right after it: they may live in Redis).

    The audit trail keeps what it had (ids, no emails) and gains ``user.deleted`` with the id, ``by``
    (``admin``, ``self``) and, for an administrator, the ``actor`` (the CLI, or the API and its key):
    never the email. UserNotFound if the account went meanwhile.
    """
    async with deps.store.write() as tx:
        ended = await tx.sessions.delete_for_user(user.id)
        for purpose in TokenPurpose:
            await tx.tokens.delete_for_user(user.id, purpose)
        await tx.factors.delete_totp(user.id)
        await tx.factors.delete_recovery_codes(user.id)
        await tx.factors.delete_challenges(user.id)
        passkeys = await tx.passkeys.delete_for_user(user.id)
        await tx.passkeys.delete_challenges(user.id)
        await tx.known_devices.delete_for_user(user.id)
        # The foreign keys cascade too; deleting each kind by name keeps that true on a database
        # whose constraints were left off, and counts what went.
        if not await tx.users.delete(user.id):
            raise UserNotFound()
    await deps.throttle.forget(user.email_canonical)
    detail: dict[str, object] = {"by": by, "sessions_ended": ended, "passkeys_removed": passkeys}
    deps.audit.record(
        "user.deleted",
        user.id,
        actor.client if actor else None,
        {**detail, **(actor.fields() if actor else {})},
    )
    return DeletedAccount(user, ended, passkeys)
