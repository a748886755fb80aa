"""Logging in and sessions: log in, check a session, log out, and the user's own sessions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from doorward.core.breaches import CHECK_INTERVAL, check_due, sha1_hex
from doorward.core.deps import Deps
from doorward.core.emails import MAX_EMAIL_LENGTH, canonical_email
from doorward.core.errors import (
    EmailUnverified,
    InvalidCredentials,
    InvalidRequest,
    InvalidSession,
    LoginRequestInvalid,
    Overloaded,
)
from doorward.core.models import Client, LoginResult, Opening, Session, TokenPurpose, User
from doorward.core.notices import device_note, mail_if_new, streak_notice
from doorward.core.outcomes import counted
from doorward.core.passwords import MAX_RAW_PASSWORD_LENGTH, Password
from doorward.core.ports import Transaction
from doorward.core.second_step import require_second_factor
from doorward.core.tokens import (
    looks_like_session_id,
    looks_like_token,
    new_session_id,
    new_token,
    token_digest,
)

MAX_TOUCHES_IN_FLIGHT = 32
"""Background last-seen writes per process at once; a check due beyond that leaves it to the next."""


async def end_sessions(tx: Transaction, user_id: int, keep: str | None = None) -> int:
    """End the user's sessions (but ``keep``) in ``tx``, and a pending change of email any of them may
    have asked for (the user cannot tell which; the "this wasn't me" link stays); how many ended."""
    ended = await tx.sessions.delete_for_user(user_id, keep=keep)
    await tx.tokens.delete_for_user(user_id, TokenPurpose.EMAIL_CHANGE)
    return ended


class Authenticator:
    """Every use case that opens, checks or ends a session. Framework-free; storage comes in via ports."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self.background = deps.background
        self._touching: set[str] = set()
        self._breach_checks: set[int] = set()  # users whose password is being checked now

    @counted("login_password")
    async def login(self, email: str, password: str, client: Client) -> LoginResult:
        """Verify the credentials and open a session.

        Unknown email, wrong password and disabled account end in the same InvalidCredentials after
        the same work (one argon2 verification), so neither the answer nor its timing tells them apart.
        The right password for an account with a second factor opens no session: MfaRequired.
        """
        d = self._deps
        canonical = canonical_email(email)
        if not canonical or not password:
            raise LoginRequestInvalid()
        if len(canonical) > MAX_EMAIL_LENGTH or len(password) > MAX_RAW_PASSWORD_LENGTH:
            raise LoginRequestInvalid()
        try:
            secret = Password(password)
        except InvalidRequest as exc:
            raise LoginRequestInvalid() from exc
        if len(secret) > d.password_policy.max_length:
            raise LoginRequestInvalid()

        # A place to hash first: when every one is taken, 503 before any database work, so a
        # flood of logins costs little more than its parsing. Then the attempt is reserved before
        # the lookup (counted as a failure until it succeeds), by the same rule for every email: a
        # 429 reveals nothing, and a burst gets no more verifies than attempts one by one would.
        with d.hash_slot() as slot:
            reserved = await d.throttle.reserve_login(canonical, client.address, read_user=True)
            user = reserved.user if reserved.read else await self._user_of(canonical)
            stored = user.password_hash if user is not None else None
            verdict = await slot.verify(stored, secret)
        if user is None or not verdict.ok or user.disabled:
            reason = "unknown_email" if user is None else "disabled" if verdict.ok else "wrong_password"
            d.audit(
                "login.failed",
                reason=reason,
                user_id=user.id if user else None,
                client=client.address,
            )
            d.throttle.reserved_failed(reserved, client.address)  # counted when reserved
            streak_notice(d, user, reserved.failures, client)  # the wait began, or the lockout
            raise InvalidCredentials()
        unverified = d.account_policy.require_email_verification and user.email_verified_at is None
        if user.mfa_enabled or unverified:
            # With a second factor, only that resets the failures (core/second_step.py): the right
            # password takes back just its own attempt. Otherwise it is taken back with the session.
            await d.throttle.reserved_succeeded(reserved, reset=not user.mfa_enabled)
        if unverified:
            d.audit("login.unverified", user_id=user.id, client=client.address)
            raise EmailUnverified()

        new_hash = await self._rehash(secret) if verdict.needs_rehash else None
        if user.mfa_enabled:
            self._check_breach_behind(user, secret, new_hash or user.password_hash)
            await require_second_factor(d, user, client, new_hash)  # raises MfaRequired
        token = new_token()
        now = d.clock()
        session = Session(
            id=new_session_id(),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + d.session_policy.lifetime,
            client_address=client.address,
            user_agent=client.user_agent,
        )
        # The password was checked against the hash read before hashing; a reset, change or
        # disable that committed since then must win, or a login in flight would outlive it.
        # The attempt is taken back and the session written in one trip where the store can.
        # The device is remembered in the same write (and mailed below when it is a new one).
        device = device_note(d, client)
        opening = Opening(session, token_digest(token), user.password_hash, new_hash, device)
        opened = await d.throttle.reserved_succeeded(reserved, opening=opening)
        if opened is None:
            opened = await d.store.open_session(
                session, opening.token_digest, user.password_hash, new_hash, device
            )
        if not opened:
            d.audit("login.failed", reason="changed_meanwhile", user_id=user.id, client=client.address)
            raise InvalidCredentials()
        if new_hash is not None:
            d.audit(
                "password.rehashed",
                user_id=user.id,
                profile=d.pool.hasher.profile.name,
                client=client.address,
            )
        d.audit("login.succeeded", user_id=user.id, session_id=session.id, client=client.address)
        self._check_breach_behind(user, secret, new_hash or user.password_hash)
        mail_if_new(d, user, device, opened)
        return LoginResult(token, user, session, mfa_enrollment_required=self.enrollment_required(user))

    async def _user_of(self, canonical: str) -> User | None:
        async with self._deps.store.read() as tx:
            return await tx.users.by_canonical_email(canonical)

    def enrollment_required(self, user: User) -> bool:
        """Whether DOORWARD_REQUIRE_MFA confines this user to enrolment, /session, /mfa and logout
        (MfaEnrollmentRequired, 403, on everything else): the policy is on and they have no factor."""
        return self._deps.account_policy.require_mfa and not user.mfa_enabled

    def refuse_if_overloaded(self) -> None:
        """Raise Overloaded (audited) if a login could not get a hash slot now.

        For a caller that can refuse a login before even reading it (the web layer): under a
        flood, most requests then cost no more than their headers. A login that passes may still
        find the pool full by the time it asks (``login`` takes its slot itself).
        """
        self._deps.refuse_if_full()

    async def _rehash(self, secret: Password) -> str | None:
        try:
            return await self._deps.pool.hash(secret)
        except Overloaded:
            return None  # the upgrade waits for the next login; this one still succeeds

    def _check_breach_behind(self, user: User, secret: Password, seen_hash: str) -> None:
        """Ask the range service about the password just verified, after the answer, once a day.

        Behind the answer, not before it: a login must not wait for another service (up to
        DOORWARD_BREACHED_PASSWORDS_TIMEOUT) on its hot path, and a verdict changes nothing about
        whether it may log in. A listed password flags every session of the account, this one
        included (its next check shows passwordCompromised), marks the account so that later logins
        say so at once, and mails the user once. Only the SHA-1 stays in memory meanwhile.
        """
        d = self._deps
        breached = d.breached
        if (
            breached is None
            or user.password_compromised_at is not None  # known already: flagged at login
            or not check_due(user.breach_checked_at, d.clock())
            or user.id in self._breach_checks
        ):
            return
        digest = sha1_hex(secret)
        self._breach_checks.add(user.id)

        async def check() -> None:
            try:
                now = d.clock()
                async with d.store.write() as tx:  # one of concurrent logins (or instances) asks
                    if not await tx.users.claim_breach_check(user.id, now, now - CHECK_INTERVAL):
                        return
                count = await breached.occurrences(digest)
                if count is None:  # failed open (logged by the adapter): the next login tries again
                    async with d.store.write() as tx:
                        await tx.users.undo_breach_check(user.id, now, user.breach_checked_at)
                    return
                if not count:
                    return
                async with d.store.write() as tx:
                    first = await tx.users.mark_compromised(user.id, seen_hash, now)
                if first:  # every session of the account says so now: the mark is the user row's
                    d.notifications.password_breached(user.email)
                    d.audit("password.breached", user_id=user.id)
            finally:
                self._breach_checks.discard(user.id)

        self.background.spawn(check(), "breach-check")

    async def check(self, token: str) -> tuple[User, Session]:
        """The user and session behind a token, or InvalidSession."""
        if not looks_like_token(token):
            raise InvalidSession()
        found = await self._deps.store.find_session(token_digest(token))
        if found is None:
            raise InvalidSession()
        session, user = found
        now = self._deps.clock()
        policy = self._deps.session_policy
        idle = policy.idle_timeout
        if (
            user.disabled
            or now >= session.expires_at
            or (idle is not None and now - session.last_seen_at >= idle)
        ):
            raise InvalidSession()
        if now - session.last_seen_at >= policy.touch_interval and self._touch_behind(session.id, now):
            session = replace(session, last_seen_at=now)
        return user, session

    def _touch_behind(self, session_id: str, now: datetime) -> bool:
        """Record a session's use behind the answer, at most one write in flight per session.

        False when no write was started (one is in flight, or too many are): the session keeps
        the ``last_seen_at`` that is stored, and a later check records the use.

        A check must not wait for a write: on SQLite every write queues for the one write lock,
        and a burst of sessions due for a touch at once would hold up every check behind it.
        """
        if session_id in self._touching or len(self._touching) >= MAX_TOUCHES_IN_FLIGHT:
            return False  # the writes must not crowd out logins
        self._touching.add(session_id)

        async def touch() -> None:
            try:
                async with self._deps.store.write() as tx:
                    await tx.sessions.touch(session_id, now)
            finally:
                self._touching.discard(session_id)

        self.background.spawn(touch(), "session-touch")
        return True

    async def logout(self, token: str) -> None:
        """End the session behind ``token``; a missing or unknown token is not an error (idempotent)."""
        if not looks_like_token(token):
            return
        async with self._deps.store.write() as tx:
            ended = await tx.sessions.delete(token_digest(token))
        if ended:
            self._deps.audit("session.ended", reason="logout")

    # --- sessions the user can see and end -------------------------------------------------------

    async def list_sessions(self, user_id: int) -> list[Session]:
        """The user's live sessions, newest first."""
        async with self._deps.store.read() as tx:
            stored = await tx.sessions.list_for_user(user_id)
        now = self._deps.clock()
        return [s for s in stored if self._is_live(s, now)]

    def _is_live(self, session: Session, now: datetime) -> bool:
        idle = self._deps.session_policy.idle_timeout
        return now < session.expires_at and (idle is None or now - session.last_seen_at < idle)

    async def end_session(self, user_id: int, session_id: str) -> bool:
        """End one of the user's own sessions; False if the user has none with this id."""
        if not looks_like_session_id(session_id):
            return False
        async with self._deps.store.write() as tx:
            ended = await tx.sessions.delete_by_id(user_id, session_id)
        if ended:
            self._deps.audit("session.ended", user_id=user_id, session_id=session_id, reason="revoked")
        return ended

    async def logout_all(self, user_id: int, keep_session_id: str | None = None) -> int:
        """End every session of the user (but ``keep_session_id``); return how many ended. A pending
        change of email goes with them: any of them may have asked for it (the user cannot tell which),
        as at a password change (the "this wasn't me" link stays)."""
        async with self._deps.store.write() as tx:
            ended = await end_sessions(tx, user_id, keep=keep_session_id)
        self._deps.audit("session.ended_all", user_id=user_id, sessions_ended=ended)
        return ended
