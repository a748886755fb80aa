"""The administrator's actions: add, disable, enable, unlock and delete accounts, revoke sessions,
reset second factors, mail a reset link, import, prune. The reads are admin_queries.py's.

Every action names its account by a ``UserRef``: an id (the admin API) or an email (the CLI)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from doorward.core.accounts import Accounts
from doorward.core.admin_queries import AdminQueries
from doorward.core.admin_records import CLI, AccountDisabled, Actor, UserRef
from doorward.core.deletion import DeletedAccount, delete_account
from doorward.core.deps import Deps
from doorward.core.emails import canonical_email, validate_new_email
from doorward.core.errors import DoorwardError, EmailTaken, InvalidRequest, MfaNotEnabled
from doorward.core.models import NewUser, TokenPurpose, User
from doorward.core.notices import KNOWN_DEVICE_DAYS
from doorward.core.sessions import end_sessions


@dataclass(frozen=True)
class ImportRow:
    """One line of a user import: the line number for the report, the email and the stored hash."""

    line: int
    email: str
    password_hash: str = field(repr=False)


@dataclass
class ImportReport:
    """What an import did: how many accounts it added and which lines it refused, with reasons."""

    imported: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


class Admin(AdminQueries):
    """Every use case of the command line and the admin API: accounts and sessions by id or email,
    imports, housekeeping. ``audit_retention``: how long ``prune`` keeps audit events (None: forever)."""

    def __init__(
        self, deps: Deps, accounts: Accounts, *, audit_retention: timedelta | None = timedelta(days=365)
    ) -> None:
        super().__init__(deps)
        self._accounts = accounts
        self._audit_retention = audit_retention

    async def add_user(self, email: str, password: str, actor: Actor = CLI) -> User:
        """Administrative account creation: the same rules as registration; the address counts as verified."""
        user = await self._accounts.register(email, password, verified=True)
        assert user is not None  # verified accounts never hide existence: EmailTaken instead
        self._audit("admin.user_added", user.id, actor)
        return user

    async def disable_user(self, ref: UserRef, actor: Actor = CLI) -> int:
        """Disable an account and end all its sessions at once; return how many sessions ended.

        ``actor`` says who acted in the audit event (the CLI, or the admin API and its key), as in
        every action here."""
        async with self._deps.store.write() as tx:
            user = await self._require_user(tx.users, ref)
            await tx.users.set_disabled(user.id, True, self._deps.clock())
            ended = await tx.sessions.delete_for_user(user.id)
            for purpose in TokenPurpose:
                await tx.tokens.delete_for_user(user.id, purpose)
            await tx.factors.delete_challenges(user.id)
            await tx.passkeys.delete_challenges(user.id)
        self._audit("admin.user_disabled", user.id, actor, sessions_ended=ended)
        return ended

    async def enable_user(self, ref: UserRef, actor: Actor = CLI) -> User:
        """Enable a disabled account again (its password works again; no session comes back); return
        it as it is now. Enabling an enabled account changes nothing and is audited alike."""
        async with self._deps.store.write() as tx:
            user = await self._require_user(tx.users, ref)
            await tx.users.set_disabled(user.id, False, self._deps.clock())
            enabled = await self._require_user(tx.users, user.id)
        self._audit("admin.user_enabled", user.id, actor, was_disabled=user.disabled)
        return enabled

    async def delete_user(self, ref: UserRef, actor: Actor = CLI) -> DeletedAccount:
        """Delete an account and every row of it (core/deletion.py); ``user.deleted`` keeps its id."""
        user = await self.find_user(ref)
        return await delete_account(self._deps, user, by="admin", actor=actor)

    async def send_password_reset(self, ref: UserRef, actor: Actor = CLI) -> User:
        """Mail the account the reset link the user's own request mails (an earlier link stops
        working); AccountDisabled for a disabled account, whose link would not work. Not counted
        against the address's mail limit: an administrator asked, not a stranger."""
        user = await self.find_user(ref)
        if user.disabled:
            raise AccountDisabled()
        await self._accounts.mail_reset_link(user)
        self._audit("admin.password_reset_mailed", user.id, actor)
        return user

    async def unlock_user(self, ref: UserRef, actor: Actor = CLI) -> None:
        """Lift a throttle wait or lockout on an account."""
        user = await self.find_user(ref)
        await self._deps.throttle.unlock(user.email_canonical)
        self._audit("admin.user_unlocked", user.id, actor)

    async def clear_client(self, address: str) -> tuple[str, dict[str, int]]:
        """Lift every per-client limit of ``address`` (an IPv4 or IPv6 address, written in any
        form Python reads); return it as the throttle keys it, with the counts forgotten."""
        try:
            client = str(ipaddress.ip_address(address.strip()))
        except ValueError:
            raise InvalidRequest(f"not an IP address: {address!r}") from None
        cleared = await self._deps.throttle.clear_client(client)
        self._deps.audit("admin.client_cleared", client=client, **cleared)
        return client, cleared

    async def revoke_sessions(self, ref: UserRef, actor: Actor = CLI) -> int:
        """End every session of an account, and a pending change of its email one of them may have
        asked for (as ``disable_user`` does); return how many sessions ended."""
        async with self._deps.store.write() as tx:
            user = await self._require_user(tx.users, ref)
            ended = await end_sessions(tx, user.id)
        self._audit("admin.sessions_revoked", user.id, actor, sessions_ended=ended)
        return ended

    async def reset_mfa(self, ref: UserRef, actor: Actor = CLI) -> int:
        """Remove an account's second factors (the app, the recovery codes and the passkeys: for a
        user who lost them) and end all its sessions; the user is mailed. Return how many sessions
        ended."""
        now = self._deps.clock()
        async with self._deps.store.write() as tx:
            user = await self._require_user(tx.users, ref)
            if not user.mfa_enabled:
                raise MfaNotEnabled()
            await tx.factors.delete_totp(user.id)
            await tx.factors.delete_recovery_codes(user.id)
            await tx.factors.delete_challenges(user.id)
            passkeys = await tx.passkeys.delete_for_user(user.id)
            await tx.passkeys.delete_challenges(user.id)
            await tx.factors.set_mfa_enabled(user.id, False, now)
            ended = await tx.sessions.delete_for_user(user.id)
        self._deps.notifications.mfa_reset(user.email)
        if passkeys:
            self._audit("mfa.admin_reset", user.id, actor, sessions_ended=ended, passkeys_removed=passkeys)
        else:
            self._audit("mfa.admin_reset", user.id, actor, sessions_ended=ended)
        return ended

    async def import_users(
        self, rows: Iterable[ImportRow], *, skip_invalid: bool, actor: Actor = CLI
    ) -> ImportReport:
        """Import accounts with their existing hashes, all in one transaction.

        Every line is checked first. Unless ``skip_invalid``, one bad line imports nothing; the report
        names each refused line and why.
        """
        report = ImportReport()
        accepted: list[NewUser] = []
        seen: set[str] = set()
        async with self._deps.store.read() as tx:
            for row in rows:
                try:
                    new = await self._import_row(row, seen)
                    if await tx.users.by_canonical_email(new.email_canonical) is not None:
                        raise EmailTaken()
                except DoorwardError as exc:
                    report.skipped.append((row.line, exc.text))
                    continue
                seen.add(new.email_canonical)
                accepted.append(new)
        if report.skipped and not skip_invalid:
            return report
        if accepted:
            async with self._deps.store.write() as tx:
                report.imported = await tx.users.add_many(accepted, self._deps.clock())
        self._audit(
            "admin.users_imported", None, actor, imported=report.imported, skipped=len(report.skipped)
        )
        return report

    async def _import_row(self, row: ImportRow, seen: set[str]) -> NewUser:
        stored_email = validate_new_email(row.email)
        canonical = canonical_email(row.email)
        if canonical in seen:
            raise EmailTaken("Duplicate email in this file")
        password_hash = await self._deps.for_import(row.password_hash)
        return NewUser(stored_email, canonical, password_hash, email_verified=True)

    # --- housekeeping ------------------------------------------------------------------------------

    async def prune(self) -> dict[str, int]:
        """Delete what has expired: sessions, mailed tokens, finished throttle windows, mfaTokens,
        passkey ceremonies' challenges, devices not seen for 90 days (new again by then), and audit
        events older than the retention."""
        now = self._deps.clock()
        idle = self._deps.session_policy.idle_timeout
        retention = self._audit_retention
        async with self._deps.store.write() as tx:
            sessions = await tx.sessions.delete_expired(now, now - idle if idle else None)
            tokens = await tx.tokens.delete_expired(now)
            challenges = await tx.factors.delete_expired_challenges(now)
            ceremonies = await tx.passkeys.delete_expired_challenges(now)
            devices = await tx.known_devices.delete_before(now - timedelta(days=KNOWN_DEVICE_DAYS))
            events = await tx.audit.delete_before(now - retention) if retention is not None else 0
        counters = await self._deps.throttle.prune(now)
        pruned = {
            "sessions": sessions,
            "tokens": tokens,
            "throttle_entries": counters,
            "mfa_challenges": challenges,
            "webauthn_challenges": ceremonies,
            "known_devices": devices,
            "audit_events": events,
        }
        self._deps.audit.record("admin.pruned", None, None, pruned)
        return pruned

    def _audit(self, event: str, user_id: int | None, actor: Actor, **detail: object) -> None:
        """An admin action's audit event, saying who acted (``Actor``): never a key, an email."""
        self._deps.audit.record(event, user_id, actor.client, {**detail, **actor.fields()})
