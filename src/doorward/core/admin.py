"""The administrator's actions: add, disable and unlock accounts, revoke sessions, import, prune."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from doorward.core.accounts import Accounts
from doorward.core.deps import Deps
from doorward.core.emails import canonical_email, validate_new_email
from doorward.core.errors import DoorwardError, EmailTaken, InvalidRequest, MfaNotEnabled, UserNotFound
from doorward.core.models import NewUser, TokenPurpose, User
from doorward.core.ports import Users


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


class Admin:
    """Every use case of the command line: accounts and sessions by email, imports, housekeeping."""

    def __init__(self, deps: Deps, accounts: Accounts) -> None:
        self._deps = deps
        self._accounts = accounts

    async def add_user(self, email: str, password: str) -> User:
        """Administrative account creation: the same rules as registration; the address counts as verified."""
        user = await self._accounts.register(email, password, verified=True)
        assert user is not None  # verified accounts never hide existence: EmailTaken instead
        self._deps.audit("admin.user_added", user_id=user.id)
        return user

    async def find_user(self, email: str) -> User:
        """The account of ``email`` (in any case and form, as at login); UserNotFound without one."""
        async with self._deps.store.read() as tx:
            return await self._require_user(tx.users, email)

    async def disable_user(self, email: str) -> int:
        """Disable an account and end all its sessions at once; return how many sessions ended."""
        async with self._deps.store.write() as tx:
            user = await self._require_user(tx.users, email)
            await tx.users.set_disabled(user.id, True, self._deps.clock())
            ended = await tx.sessions.delete_for_user(user.id)
            for purpose in TokenPurpose:
                await tx.tokens.delete_for_user(user.id, purpose)
            await tx.factors.delete_challenges(user.id)
            await tx.passkeys.delete_challenges(user.id)
        self._deps.audit("admin.user_disabled", user_id=user.id, sessions_ended=ended)
        return ended

    async def unlock_user(self, email: str) -> None:
        """Lift a throttle wait or lockout on an account."""
        async with self._deps.store.read() as tx:
            user = await self._require_user(tx.users, email)
        await self._deps.throttle.unlock(user.email_canonical)
        self._deps.audit("admin.user_unlocked", user_id=user.id)

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

    async def revoke_sessions(self, email: str) -> int:
        """End every session of an account; return how many ended."""
        async with self._deps.store.write() as tx:
            user = await self._require_user(tx.users, email)
            ended = await tx.sessions.delete_for_user(user.id)
        self._deps.audit("admin.sessions_revoked", user_id=user.id, sessions_ended=ended)
        return ended

    async def reset_mfa(self, email: str) -> int:
        """Remove an account's second factors (the app, the recovery codes and the passkeys: for a
        user who lost them) and end all its sessions; the user is mailed. Return how many sessions
        ended."""
        now = self._deps.clock()
        async with self._deps.store.write() as tx:
            user = await self._require_user(tx.users, email)
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
            self._deps.audit(
                "mfa.admin_reset", user_id=user.id, sessions_ended=ended, passkeys_removed=passkeys
            )
        else:
            self._deps.audit("mfa.admin_reset", user_id=user.id, sessions_ended=ended)
        return ended

    async def import_users(self, rows: Iterable[ImportRow], *, skip_invalid: bool) -> ImportReport:
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
        self._deps.audit("admin.users_imported", imported=report.imported, skipped=len(report.skipped))
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
        passkey ceremonies' challenges."""
        now = self._deps.clock()
        idle = self._deps.session_policy.idle_timeout
        async with self._deps.store.write() as tx:
            sessions = await tx.sessions.delete_expired(now, now - idle if idle else None)
            tokens = await tx.tokens.delete_expired(now)
            challenges = await tx.factors.delete_expired_challenges(now)
            ceremonies = await tx.passkeys.delete_expired_challenges(now)
        counters = await self._deps.throttle.prune(now)
        self._deps.audit(
            "admin.pruned",
            sessions=sessions,
            tokens=tokens,
            throttle_entries=counters,
            mfa_challenges=challenges,
            webauthn_challenges=ceremonies,
        )
        return {
            "sessions": sessions,
            "tokens": tokens,
            "throttle_entries": counters,
            "mfa_challenges": challenges,
            "webauthn_challenges": ceremonies,
        }

    @staticmethod
    async def _require_user(users: Users, email: str) -> User:
        user = await users.by_canonical_email(canonical_email(email))
        if user is None:
            raise UserNotFound()
        return user
