"""The administrator's reads: find an account by id or email, search accounts, one account's detail,
and the audit trail. Admin (admin.py) inherits them, so the CLI and the admin API call one object."""

from __future__ import annotations

from doorward.core.admin_records import (
    AccountDetail,
    AuditPage,
    AuditQuery,
    FactorSummary,
    SessionInfo,
    UserPage,
    UserRef,
    audit_cursor,
    page_size,
    read_audit_cursor,
    read_user_cursor,
    user_cursor,
)
from doorward.core.deps import Deps
from doorward.core.devices import describe_device
from doorward.core.emails import canonical_email
from doorward.core.errors import UserNotFound
from doorward.core.models import Session, User
from doorward.core.ports import Users


class AdminQueries:
    """Reads over accounts, sessions and the audit trail; they change nothing and audit nothing."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def find_user(self, ref: UserRef) -> User:
        """The account ``ref`` names (an id, or an email in any case and form); UserNotFound without one."""
        async with self._deps.store.read() as tx:
            return await self._require_user(tx.users, ref)

    async def list_users(self, query: str = "", *, limit: int = 50, cursor: str | None = None) -> UserPage:
        """Accounts whose canonical email starts with ``query`` (canonicalised as at login), oldest
        first, ``limit`` a page; pass the page's ``next_cursor`` back for the next one."""
        size = page_size(limit)
        after = read_user_cursor(cursor) if cursor else None
        async with self._deps.store.read() as tx:
            # One more than a page: whether there is a next page, without a count.
            found = await tx.users.search(canonical_email(query), after, size + 1)
        page = found[:size]
        return UserPage(page, user_cursor(page[-1].id) if len(found) > size else None)

    async def account(self, ref: UserRef) -> AccountDetail:
        """One account with its state (disabled, locked, verified, factors) and its live sessions."""
        async with self._deps.store.read() as tx:
            user = await self._require_user(tx.users, ref)
            totp = await tx.factors.totp(user.id)
            codes = await tx.factors.recovery_codes(user.id)
            passkeys = await tx.passkeys.for_user(user.id)
            stored = await tx.sessions.list_for_user(user.id)
        throttle = await self._deps.throttle.account_state(user.email_canonical)
        factors = FactorSummary(
            totp=totp is not None and totp.confirmed_at is not None,
            recovery_codes_left=len(codes),
            passkeys=len(passkeys),
        )
        return AccountDetail(user, throttle, factors, [_info(s) for s in stored if self._live(s)])

    async def audit_events(self, query: AuditQuery) -> AuditPage:
        """Stored audit events matching ``query``, newest first, one page of ``query.limit``.

        An email in ``query.user`` must name an existing account (UserNotFound otherwise); a deleted
        account's events are found by its id.
        """
        size = page_size(query.limit)
        before = read_audit_cursor(query.cursor) if query.cursor else None
        if isinstance(query.user, int) and not 0 < query.user < 2**31:
            return AuditPage([], None)  # ids are 32-bit on PostgreSQL: names nobody (a driver error)
        async with self._deps.store.read() as tx:
            user_id = query.user
            if isinstance(user_id, str):
                user_id = (await self._require_user(tx.users, user_id)).id
            found = await tx.audit.query(
                user_id=user_id,
                event=query.event or None,
                since=query.since,
                until=query.until,
                before=before,
                limit=size + 1,
            )
        page = found[:size]
        return AuditPage(page, audit_cursor(page[-1]) if len(found) > size else None)

    def _live(self, session: Session) -> bool:
        now = self._deps.clock()
        idle = self._deps.session_policy.idle_timeout
        return now < session.expires_at and (idle is None or now - session.last_seen_at < idle)

    @staticmethod
    async def _require_user(users: Users, ref: UserRef) -> User:
        if isinstance(ref, int):
            # Ids are 32-bit on PostgreSQL: a larger one names nobody (and would be a driver error).
            user = await users.by_id(ref) if 0 < ref < 2**31 else None
            if user is None:
                raise UserNotFound("No account with this id")
            return user
        user = await users.by_canonical_email(canonical_email(ref))
        if user is None:
            raise UserNotFound()
        return user


def _info(session: Session) -> SessionInfo:
    return SessionInfo(
        id=session.id,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        expires_at=session.expires_at,
        client_address=session.client_address,
        user_agent=session.user_agent,
        device=describe_device(session.user_agent),
        aal=session.aal,
        amr=session.amr,
    )
