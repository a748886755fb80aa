"""The authentication use cases: register, log in, check a session, log out, and the admin actions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from doorward.core.audit import Auditor
from doorward.core.background import Background
from doorward.core.clock import Clock, utc_now
from doorward.core.emails import MAX_EMAIL_LENGTH, canonical_email, validate_new_email
from doorward.core.errors import (
    DoorwardError,
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    InvalidCurrentPassword,
    InvalidRequest,
    InvalidSession,
    LoginRequestInvalid,
    Overloaded,
    TokenExpired,
    TokenInvalid,
    UserNotFound,
)
from doorward.core.hashing import PasswordHasher
from doorward.core.hashpool import HashPool, Slot
from doorward.core.models import AccountToken, Client, LoginResult, NewUser, Session, TokenPurpose, User
from doorward.core.notifications import Notifications
from doorward.core.passwords import MAX_RAW_PASSWORD_LENGTH, Password, PasswordPolicy
from doorward.core.ports import Store, Users
from doorward.core.throttle import Throttle
from doorward.core.tokens import (
    looks_like_session_id,
    looks_like_token,
    new_session_id,
    new_token,
    token_digest,
)

T = TypeVar("T")


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions live. ``idle_timeout`` None means sessions only expire absolutely."""

    lifetime: timedelta = timedelta(hours=24)
    idle_timeout: timedelta | None = None
    # last_seen is written at most this often, so a busy token does not write on every request.
    touch_interval: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class AccountPolicy:
    """The account lifecycle's settings."""

    require_email_verification: bool = False
    reset_token_lifetime: timedelta = timedelta(minutes=30)
    verification_token_lifetime: timedelta = timedelta(hours=24)


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


class Authenticator:
    """Every use case that touches a password or a session. Framework-free; storage comes in via ports."""

    def __init__(
        self,
        *,
        store: Store,
        hasher: PasswordHasher,
        pool: HashPool,
        password_policy: PasswordPolicy,
        session_policy: SessionPolicy,
        throttle: Throttle,
        audit: Auditor,
        notifications: Notifications,
        account_policy: AccountPolicy | None = None,
        background: Background | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._notify = notifications
        self._accounts = account_policy or AccountPolicy()
        self.background = background or Background()
        self._touching: set[str] = set()
        self._throttle = throttle
        self._audit = audit
        self._hasher = hasher
        self._pool = pool
        self._passwords = password_policy
        self._sessions = session_policy
        self._clock = clock

    async def register(
        self, email: str, password: str, client: Client | None = None, *, verified: bool = False
    ) -> User | None:
        """Create an account after checking the email's shape and the password policy.

        With email verification required, the answer must not depend on whether the email exists:
        the request pays the same checks and the same hash either way, and the lookup, the insert
        and the mail (a verification link, or "someone tried to register" to an existing owner)
        happen in the background. The caller then gets None. Otherwise an existing email raises
        EmailTaken.
        """
        await self._throttle.admit_registration(client.address if client else None)
        stored_email = validate_new_email(email)
        canonical = canonical_email(email)
        secret = Password(password)
        self._passwords.check(secret, email=canonical)
        if self._accounts.require_email_verification and not verified:
            password_hash = await self._hash(self._hasher.hash, secret)
            self.background.spawn(
                self._register_unverified(NewUser(stored_email, canonical, password_hash)), "registration"
            )
            return None
        async with self._store.read() as tx:
            if await tx.users.by_canonical_email(canonical) is not None:
                raise EmailTaken()
        password_hash = await self._hash(self._hasher.hash, secret)
        async with self._store.write() as tx:
            user = await tx.users.add(
                NewUser(stored_email, canonical, password_hash, email_verified=verified), self._clock()
            )
        self._audit("user.registered", user_id=user.id)
        return user

    async def _register_unverified(self, new: NewUser) -> None:
        token = new_token()
        now = self._clock()
        try:
            async with self._store.write() as tx:
                user = await tx.users.add(new, now)
                await tx.tokens.add(self._account_token(token, user.id, TokenPurpose.VERIFY_EMAIL, now))
        except EmailTaken:
            async with self._store.read() as tx:
                existing = await tx.users.by_canonical_email(new.email_canonical)
            if existing is not None and await self._throttle.allow_account_mail(new.email_canonical):
                self._notify.registration_attempt(existing.email)
            self._audit("user.registration_repeated", user_id=existing.id if existing else None)
            return
        self._notify.verify_email(user.email, token)
        self._audit("user.registered", user_id=user.id)

    def _account_token(self, token: str, user_id: int, purpose: TokenPurpose, now: datetime) -> AccountToken:
        lifetime = (
            self._accounts.reset_token_lifetime
            if purpose is TokenPurpose.RESET_PASSWORD
            else self._accounts.verification_token_lifetime
        )
        return AccountToken(token_digest(token), user_id, purpose, now, now + lifetime)

    async def login(self, email: str, password: str, client: Client) -> LoginResult:
        """Verify the credentials and open a session.

        Unknown email, wrong password and disabled account end in the same InvalidCredentials after
        the same work (one argon2 verification), so neither the answer nor its timing tells them apart.
        """
        canonical = canonical_email(email)
        if not canonical or not password:
            raise LoginRequestInvalid()
        if len(canonical) > MAX_EMAIL_LENGTH or len(password) > MAX_RAW_PASSWORD_LENGTH:
            raise LoginRequestInvalid()
        try:
            secret = Password(password)
        except InvalidRequest as exc:
            raise LoginRequestInvalid() from exc
        if len(secret) > self._passwords.max_length:
            raise LoginRequestInvalid()

        # A place to hash first: when every one is taken, 503 before any database work, so a
        # flood of logins costs little more than its parsing. Then throttled before the lookup,
        # by the same rule for every email: a 429 reveals nothing.
        with self._hash_slot() as slot:
            attempts = await self._throttle.admit_login(canonical, client.address)
            async with self._store.read() as tx:
                user = await tx.users.by_canonical_email(canonical)
            stored = user.password_hash if user is not None else None
            verdict = await slot.run(self._hasher.verify, stored, secret)
        if user is None or not verdict.ok or user.disabled:
            reason = "unknown_email" if user is None else "disabled" if verdict.ok else "wrong_password"
            self._audit(
                "login.failed",
                reason=reason,
                user_id=user.id if user else None,
                client=client.address,
            )
            await self._throttle.login_failed(canonical, client.address)
            raise InvalidCredentials()
        await self._throttle.login_succeeded(canonical, attempts)
        if self._accounts.require_email_verification and user.email_verified_at is None:
            self._audit("login.unverified", user_id=user.id, client=client.address)
            raise EmailUnverified()

        new_hash = await self._rehash(secret) if verdict.needs_rehash else None
        token = new_token()
        now = self._clock()
        session = Session(
            id=new_session_id(),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self._sessions.lifetime,
            client_address=client.address,
            user_agent=client.user_agent,
        )
        async with self._store.write() as tx:
            # The password was checked against the hash read before hashing; a reset, change or
            # disable that committed since then must win, or a login in flight would outlive it.
            if not await tx.users.confirm_credentials(user.id, user.password_hash):
                self._audit(
                    "login.failed", reason="changed_meanwhile", user_id=user.id, client=client.address
                )
                raise InvalidCredentials()
            if new_hash is not None:
                await tx.users.replace_password_hash(user.id, user.password_hash, new_hash, now)
            await tx.sessions.add(session, token_digest(token))
        if new_hash is not None:
            self._audit("password.rehashed", user_id=user.id, profile=self._hasher.profile.name)
        self._audit("login.succeeded", user_id=user.id, session_id=session.id, client=client.address)
        return LoginResult(token=token, user=user, session=session)

    async def _hash(self, fn: Callable[..., T], *args: object) -> T:
        """Run a hash on the bounded pool; a full pool is an audited 503."""
        with self._hash_slot() as slot:
            return await slot.run(fn, *args)

    def _hash_slot(self) -> Slot:
        """A slot on the bounded pool (``HashPool.slot``); a full pool is an audited 503."""
        try:
            return self._pool.slot()
        except Overloaded:
            self._audit("overload.rejected", pending=self._pool.pending)
            raise

    def refuse_if_overloaded(self) -> None:
        """Raise Overloaded (audited) if a login could not get a hash slot now.

        For a caller that can refuse a login before even reading it (web/hotpaths.py): under a
        flood, most requests then cost no more than their headers. A login that passes may still
        find the pool full by the time it asks (``login`` takes its slot itself).
        """
        if self._pool.full:
            self._audit("overload.rejected", pending=self._pool.pending)
            raise Overloaded()

    async def _rehash(self, secret: Password) -> str | None:
        try:
            return await self._pool.run(self._hasher.hash, secret)
        except Overloaded:
            return None  # the upgrade waits for the next login; this one still succeeds

    async def check(self, token: str) -> tuple[User, Session]:
        """The user and session behind a token, or InvalidSession."""
        if not looks_like_token(token):
            raise InvalidSession()
        found = await self._store.find_session(token_digest(token))
        if found is None:
            raise InvalidSession()
        session, user = found
        now = self._clock()
        idle = self._sessions.idle_timeout
        if (
            user.disabled
            or now >= session.expires_at
            or (idle is not None and now - session.last_seen_at >= idle)
        ):
            raise InvalidSession()
        if now - session.last_seen_at >= self._sessions.touch_interval:
            self._touch_behind(session.id, now)
            session = replace(session, last_seen_at=now)
        return user, session

    def _touch_behind(self, session_id: str, now: datetime) -> None:
        """Record a session's use behind the answer, at most one write in flight per session.

        A check must not wait for a write: on SQLite every write queues for the one write lock,
        and a burst of sessions due for a touch at once put hundreds of milliseconds on p99.
        """
        if session_id in self._touching:
            return
        self._touching.add(session_id)

        async def touch() -> None:
            try:
                async with self._store.write() as tx:
                    await tx.sessions.touch(session_id, now)
            finally:
                self._touching.discard(session_id)

        self.background.spawn(touch(), "session-touch")

    async def logout(self, token: str) -> None:
        """End the session behind ``token``; a missing or unknown token is not an error (idempotent)."""
        if not looks_like_token(token):
            return
        async with self._store.write() as tx:
            ended = await tx.sessions.delete(token_digest(token))
        if ended:
            self._audit("session.ended", reason="logout")

    async def add_user(self, email: str, password: str) -> User:
        """Administrative account creation: the same rules as registration; the address counts as verified."""
        user = await self.register(email, password, verified=True)
        assert user is not None  # verified accounts never hide existence: EmailTaken instead
        self._audit("admin.user_added", user_id=user.id)
        return user

    async def disable_user(self, email: str) -> int:
        """Disable an account and end all its sessions at once; return how many sessions ended."""
        async with self._store.write() as tx:
            user = await self._require_user(tx.users, email)
            await tx.users.set_disabled(user.id, True, self._clock())
            ended = await tx.sessions.delete_for_user(user.id)
            for purpose in TokenPurpose:
                await tx.tokens.delete_for_user(user.id, purpose)
        self._audit("admin.user_disabled", user_id=user.id, sessions_ended=ended)
        return ended

    async def unlock_user(self, email: str) -> None:
        """Lift a throttle wait or lockout on an account."""
        async with self._store.read() as tx:
            user = await self._require_user(tx.users, email)
        await self._throttle.unlock(user.email_canonical)
        self._audit("admin.user_unlocked", user_id=user.id)

    async def revoke_sessions(self, email: str) -> int:
        """End every session of an account; return how many ended."""
        async with self._store.write() as tx:
            user = await self._require_user(tx.users, email)
            ended = await tx.sessions.delete_for_user(user.id)
        self._audit("admin.sessions_revoked", user_id=user.id, sessions_ended=ended)
        return ended

    async def import_users(self, rows: Iterable[ImportRow], *, skip_invalid: bool) -> ImportReport:
        """Import accounts with their existing hashes, all in one transaction.

        Every line is checked first. Unless ``skip_invalid``, one bad line imports nothing; the report
        names each refused line and why.
        """
        report = ImportReport()
        accepted: list[NewUser] = []
        seen: set[str] = set()
        async with self._store.read() as tx:
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
            async with self._store.write() as tx:
                report.imported = await tx.users.add_many(accepted, self._clock())
        self._audit("admin.users_imported", imported=report.imported, skipped=len(report.skipped))
        return report

    async def _import_row(self, row: ImportRow, seen: set[str]) -> NewUser:
        stored_email = validate_new_email(row.email)
        canonical = canonical_email(row.email)
        if canonical in seen:
            raise EmailTaken("Duplicate email in this file")
        password_hash = await self._hash(self._hasher.for_import, row.password_hash)
        return NewUser(stored_email, canonical, password_hash, email_verified=True)

    # --- sessions the user can see and end -------------------------------------------------------

    async def list_sessions(self, user_id: int) -> list[Session]:
        """The user's live sessions, newest first."""
        async with self._store.read() as tx:
            stored = await tx.sessions.list_for_user(user_id)
        now = self._clock()
        return [s for s in stored if self._is_live(s, now)]

    def _is_live(self, session: Session, now: datetime) -> bool:
        idle = self._sessions.idle_timeout
        return now < session.expires_at and (idle is None or now - session.last_seen_at < idle)

    async def end_session(self, user_id: int, session_id: str) -> bool:
        """End one of the user's own sessions; False if the user has none with this id."""
        if not looks_like_session_id(session_id):
            return False
        async with self._store.write() as tx:
            ended = await tx.sessions.delete_by_id(user_id, session_id)
        if ended:
            self._audit("session.ended", user_id=user_id, session_id=session_id, reason="revoked")
        return ended

    async def logout_all(self, user_id: int, keep_session_id: str | None = None) -> int:
        """End every session of the user (but ``keep_session_id``); return how many ended."""
        async with self._store.write() as tx:
            ended = await tx.sessions.delete_for_user(user_id, keep=keep_session_id)
        self._audit("session.ended_all", user_id=user_id, sessions_ended=ended)
        return ended

    # --- passwords: change and reset ---------------------------------------------------------------

    async def change_password(
        self, user: User, session: Session, current_password: str, new_password: str, client: Client
    ) -> None:
        """Set a new password, proven by the current one; every other session of the user ends.

        A wrong current password counts as a failed login for the throttle.
        """
        attempts = await self._throttle.admit_login(user.email_canonical, client.address)
        try:
            current = Password(current_password)
        except InvalidRequest as exc:
            raise InvalidCurrentPassword() from exc
        verdict = await self._hash(self._hasher.verify, user.password_hash, current)
        if not verdict.ok:
            await self._throttle.login_failed(user.email_canonical, client.address)
            self._audit("password.change_failed", user_id=user.id, client=client.address)
            raise InvalidCurrentPassword()
        new = Password(new_password)
        self._passwords.check(new, email=user.email_canonical)
        new_hash = await self._hash(self._hasher.hash, new)
        async with self._store.write() as tx:
            # Compare-and-set, and only while this session lives: a reset, another change, or a
            # "log out everywhere" that committed meanwhile wins over this change.
            changed = await tx.users.replace_password_hash(
                user.id, user.password_hash, new_hash, self._clock()
            )
            if not changed or not await tx.sessions.exists(session.id):
                raise InvalidSession()
            ended = await tx.sessions.delete_for_user(user.id, keep=session.id)
            await tx.tokens.delete_for_user(user.id, TokenPurpose.RESET_PASSWORD)
        await self._throttle.login_succeeded(user.email_canonical, attempts)
        self._notify.password_changed(user.email)
        self._audit("password.changed", user_id=user.id, sessions_ended=ended, client=client.address)

    async def request_password_reset(self, email: str, client: Client) -> None:
        """Mail a reset link if the account exists. Returns at once either way: the lookup, the token
        and the mail happen in the background, so the answer and its time say nothing.
        """
        canonical = await self._admit_mail_request(email, client)
        self.background.spawn(self._send_reset(canonical, client), "password-reset")

    async def _admit_mail_request(self, email: str, client: Client) -> str:
        """The canonical email of a request that may send mail, if the client may make one now."""
        await self._throttle.admit_mail(client.address)
        canonical = canonical_email(email)
        if not canonical or len(canonical) > MAX_EMAIL_LENGTH:
            raise InvalidRequest("Email address required")
        return canonical

    async def _replace_token(self, user_id: int, purpose: TokenPurpose) -> str:
        """A new mailed token for the user, replacing any earlier one of the same purpose."""
        token = new_token()
        now = self._clock()
        async with self._store.write() as tx:
            await tx.tokens.delete_for_user(user_id, purpose)
            await tx.tokens.add(self._account_token(token, user_id, purpose, now))
        return token

    async def _send_reset(self, canonical: str, client: Client) -> None:
        async with self._store.read() as tx:
            user = await tx.users.by_canonical_email(canonical)
        if user is None or user.disabled:
            self._audit("password.reset_requested", outcome="no_account", client=client.address)
            return
        if not await self._throttle.allow_account_mail(canonical):
            self._audit(
                "password.reset_requested", outcome="mail_limit", user_id=user.id, client=client.address
            )
            return
        token = await self._replace_token(user.id, TokenPurpose.RESET_PASSWORD)
        self._notify.password_reset(user.email, token)
        self._audit("password.reset_requested", outcome="mailed", user_id=user.id, client=client.address)

    async def reset_password(self, token: str, new_password: str) -> None:
        """Set a new password with a mailed token; all the user's sessions end; the token is used up.

        A password the policy refuses leaves the token usable for a better one.
        """
        if not looks_like_token(token):
            raise TokenInvalid()
        digest = token_digest(token)
        new = Password(new_password)
        async with self._store.read() as tx:
            found = await tx.tokens.find(digest, TokenPurpose.RESET_PASSWORD)
            user = await tx.users.by_id(found.user_id) if found else None
        if found is None or user is None or user.disabled:
            raise TokenInvalid()
        if self._clock() >= found.expires_at:
            raise TokenExpired()
        self._passwords.check(new, email=user.email_canonical)
        new_hash = await self._hash(self._hasher.hash, new)
        now = self._clock()
        async with self._store.write() as tx:
            if await tx.tokens.take(digest, TokenPurpose.RESET_PASSWORD) is None:
                raise TokenInvalid()  # used by a concurrent request meanwhile
            await tx.users.set_password_hash(user.id, new_hash, now)
            ended = await tx.sessions.delete_for_user(user.id)
            await tx.tokens.delete_for_user(user.id, TokenPurpose.RESET_PASSWORD)
            if user.email_verified_at is None:
                await tx.users.mark_verified(user.id, now)  # the mail reached its owner
        await self._throttle.unlock(user.email_canonical)
        self._notify.password_changed(user.email)
        self._audit("password.reset", user_id=user.id, sessions_ended=ended)

    # --- email verification ------------------------------------------------------------------------

    async def verify_email(self, token: str) -> None:
        """Confirm an address with the token mailed at registration."""
        if not looks_like_token(token):
            raise TokenInvalid()
        now = self._clock()
        async with self._store.write() as tx:
            found = await tx.tokens.take(token_digest(token), TokenPurpose.VERIFY_EMAIL)
            if found is None:
                raise TokenInvalid()
            if now >= found.expires_at:
                raise TokenExpired()  # rolls back: the expired token stays, and stays expired
            user = await tx.users.by_id(found.user_id)
            if user is None or user.disabled:
                raise TokenInvalid()
            await tx.users.mark_verified(found.user_id, now)
        self._audit("user.email_verified", user_id=found.user_id)

    async def resend_verification(self, email: str, client: Client) -> None:
        """Mail a new verification link if an unverified account has this address; at once either way."""
        canonical = await self._admit_mail_request(email, client)
        self.background.spawn(self._send_verification(canonical), "verification-resend")

    async def _send_verification(self, canonical: str) -> None:
        async with self._store.read() as tx:
            user = await tx.users.by_canonical_email(canonical)
        if user is None or user.disabled or user.email_verified_at is not None:
            return
        if not await self._throttle.allow_account_mail(canonical):
            return
        token = await self._replace_token(user.id, TokenPurpose.VERIFY_EMAIL)
        self._notify.verify_email(user.email, token)
        self._audit("user.verification_sent", user_id=user.id)

    # --- housekeeping ------------------------------------------------------------------------------

    async def prune(self) -> dict[str, int]:
        """Delete what has expired: sessions, mailed tokens, finished throttle windows."""
        now = self._clock()
        idle = self._sessions.idle_timeout
        async with self._store.write() as tx:
            sessions = await tx.sessions.delete_expired(now, now - idle if idle else None)
            tokens = await tx.tokens.delete_expired(now)
        counters = await self._throttle.prune(now)
        self._audit("admin.pruned", sessions=sessions, tokens=tokens, throttle_entries=counters)
        return {"sessions": sessions, "tokens": tokens, "throttle_entries": counters}

    @staticmethod
    async def _require_user(users: Users, email: str) -> User:
        user = await users.by_canonical_email(canonical_email(email))
        if user is None:
            raise UserNotFound()
        return user
