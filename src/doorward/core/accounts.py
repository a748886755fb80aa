"""The account lifecycle: register, change or reset a password, verify an email address."""

from __future__ import annotations

from datetime import datetime

from doorward.core.breaches import refuse_breached
from doorward.core.deps import Deps
from doorward.core.emails import MAX_EMAIL_LENGTH, canonical_email, validate_new_email
from doorward.core.errors import (
    EmailTaken,
    InvalidRequest,
    InvalidSession,
    PasswordUnchanged,
    TokenExpired,
    TokenInvalid,
)
from doorward.core.models import AccountToken, Client, NewUser, Session, TokenPurpose, User
from doorward.core.notices import sighting
from doorward.core.outcomes import counted
from doorward.core.passwords import Password
from doorward.core.reauth import reauthenticate
from doorward.core.sessions import end_sessions
from doorward.core.tokens import looks_like_token, new_token, token_digest


class Accounts:
    """Every use case that creates an account or changes its password or address. Framework-free."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self.background = deps.background

    @counted("registration")
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
        d = self._deps
        await d.throttle.admit_registration(client.address if client else None)
        stored_email = validate_new_email(email)
        canonical = canonical_email(email)
        secret = Password(password)
        d.password_policy.check(secret, email=canonical)
        await refuse_breached(d.breached, secret)  # before the hash: a refused password costs none
        if d.account_policy.require_email_verification and not verified:
            password_hash = await d.hash(secret)
            self.background.spawn(
                self._register_unverified(NewUser(stored_email, canonical, password_hash), client),
                "registration",
            )
            return None
        async with d.store.read() as tx:
            if await tx.users.by_canonical_email(canonical) is not None:
                raise EmailTaken()
        password_hash = await d.hash(secret)
        async with d.store.write() as tx:
            user = await tx.users.add(
                NewUser(stored_email, canonical, password_hash, email_verified=verified), d.clock()
            )
        d.audit("user.registered", user_id=user.id, client=client.address if client else None)
        return user

    async def _register_unverified(self, new: NewUser, client: Client | None) -> None:
        d = self._deps
        token = new_token()
        now = d.clock()
        try:
            async with d.store.write() as tx:
                user = await tx.users.add(new, now)
                await tx.tokens.add(self._account_token(token, user.id, TokenPurpose.VERIFY_EMAIL, now))
        except EmailTaken:
            async with d.store.read() as tx:
                existing = await tx.users.by_canonical_email(new.email_canonical)
            if existing is not None and await d.throttle.allow_account_mail(new.email_canonical):
                d.notifications.registration_attempt(existing.email)
            d.audit(
                "user.registration_repeated",
                user_id=existing.id if existing else None,
                client=client.address if client else None,
            )
            return
        d.notifications.verify_email(user.email, token)
        d.audit("user.registered", user_id=user.id, client=client.address if client else None)

    def _account_token(self, token: str, user_id: int, purpose: TokenPurpose, now: datetime) -> AccountToken:
        policy = self._deps.account_policy
        lifetime = (
            policy.reset_token_lifetime
            if purpose is TokenPurpose.RESET_PASSWORD
            else policy.verification_token_lifetime
        )
        return AccountToken(token_digest(token), user_id, purpose, now, now + lifetime)

    # --- passwords: change and reset ---------------------------------------------------------------

    async def change_password(
        self, user: User, session: Session, current_password: str, new_password: str, client: Client
    ) -> None:
        """Set a new password, proven by the current one; every other session of the user ends.

        A wrong current password counts as a failed login for the throttle.
        """
        d = self._deps
        proof = await reauthenticate(
            d,
            user,
            current_password,
            client,
            purpose="password_change",
            failed_event="password.change_failed",
        )
        attempts = proof.attempts
        new = Password(new_password)
        if new.normalised == proof.password.normalised:
            # Accepted, it would end the other sessions and mail "your password was changed" for nothing.
            raise PasswordUnchanged()
        d.password_policy.check(new, email=user.email_canonical)
        await refuse_breached(d.breached, new)
        new_hash = await d.hash(new)
        async with d.store.write() as tx:
            # Compare-and-set, and only while this session lives: a reset, another change, or a
            # "log out everywhere" that committed meanwhile wins over this change.
            changed = await tx.users.replace_password_hash(user.id, user.password_hash, new_hash, d.clock())
            if not changed or not await tx.sessions.exists(session.id):
                raise InvalidSession()
            ended = await end_sessions(tx, user.id, keep=session.id)
            await tx.tokens.delete_for_user(user.id, TokenPurpose.RESET_PASSWORD)
            await tx.factors.delete_challenges(user.id)  # a sign-in half done with the old password
            await tx.passkeys.delete_challenges(user.id)  # and a passkey's set-up it allowed
        await d.throttle.login_succeeded(user.email_canonical, attempts)
        d.notifications.password_changed(user.email, sighting(d, client))
        d.audit("password.changed", user_id=user.id, sessions_ended=ended, client=client.address)

    @counted("reset_request")
    async def request_password_reset(self, email: str, client: Client) -> None:
        """Mail a reset link if the account exists. Returns at once either way: the lookup, the token
        and the mail happen in the background, so the answer and its time say nothing.
        """
        canonical = await self._admit_mail_request(email, client)
        self.background.spawn(self._send_reset(canonical, client), "password-reset")

    async def _admit_mail_request(self, email: str, client: Client) -> str:
        """The canonical email of a request that may send mail, if the client may make one now."""
        await self._deps.throttle.admit_mail(client.address)
        canonical = canonical_email(email)
        if not canonical or len(canonical) > MAX_EMAIL_LENGTH:
            raise InvalidRequest("Email address required")
        return canonical

    async def _replace_token(self, user_id: int, purpose: TokenPurpose) -> str:
        """A new mailed token for the user, replacing any earlier one of the same purpose."""
        token = new_token()
        now = self._deps.clock()
        async with self._deps.store.write() as tx:
            await tx.tokens.delete_for_user(user_id, purpose)
            await tx.tokens.add(self._account_token(token, user_id, purpose, now))
        return token

    async def _send_reset(self, canonical: str, client: Client) -> None:
        d = self._deps
        async with d.store.read() as tx:
            user = await tx.users.by_canonical_email(canonical)
        if user is None or user.disabled:
            d.audit("password.reset_requested", outcome="no_account", client=client.address)
            return
        if not await d.throttle.allow_account_mail(canonical):
            d.audit("password.reset_requested", outcome="mail_limit", user_id=user.id, client=client.address)
            return
        await self.mail_reset_link(user)
        d.audit("password.reset_requested", outcome="mailed", user_id=user.id, client=client.address)

    async def mail_reset_link(self, user: User) -> None:
        """Mail ``user`` a new password reset link (an earlier one stops working): the user's own
        request and the administrator's (Admin.send_password_reset) send the same mail."""
        token = await self._replace_token(user.id, TokenPurpose.RESET_PASSWORD)
        self._deps.notifications.password_reset(user.email, token)

    async def check_reset_token(self, token: str) -> None:
        """Raise TokenInvalid or TokenExpired unless ``token`` would reset a password now; it is not
        used up (the page a mailed link opens asks, so that a dead link says so before the form)."""
        await self._reset_token_user(token)

    async def _reset_token_user(self, token: str) -> User:
        d = self._deps
        if not looks_like_token(token):
            raise TokenInvalid()
        async with d.store.read() as tx:
            found = await tx.tokens.find(token_digest(token), TokenPurpose.RESET_PASSWORD)
            user = await tx.users.by_id(found.user_id) if found else None
        if found is None or user is None or user.disabled:
            raise TokenInvalid()
        if d.clock() >= found.expires_at:
            raise TokenExpired()
        return user

    @counted("reset")
    async def reset_password(self, token: str, new_password: str, client: Client | None = None) -> None:
        """Set a new password with a mailed token; all the user's sessions end; the token is used up.

        A password the policy refuses leaves the token usable for a better one.
        """
        d = self._deps
        if not looks_like_token(token):
            raise TokenInvalid()
        digest = token_digest(token)
        new = Password(new_password)
        user = await self._reset_token_user(token)
        d.password_policy.check(new, email=user.email_canonical)
        await refuse_breached(d.breached, new)
        new_hash = await d.hash(new)
        now = d.clock()
        async with d.store.write() as tx:
            if await tx.tokens.take(digest, TokenPurpose.RESET_PASSWORD) is None:
                raise TokenInvalid()  # used by a concurrent request meanwhile
            await tx.users.set_password_hash(user.id, new_hash, now)
            ended = await end_sessions(tx, user.id)
            await tx.tokens.delete_for_user(user.id, TokenPurpose.RESET_PASSWORD)
            await tx.factors.delete_challenges(user.id)  # the second factor stays: a reset keeps MFA
            await tx.passkeys.delete_challenges(user.id)
            if user.email_verified_at is None:
                await tx.users.mark_verified(user.id, now)  # the mail reached its owner
        await d.throttle.unlock(user.email_canonical)
        d.notifications.password_reset_used(user.email, sighting(d, client or Client()))
        d.audit("password.reset", user_id=user.id, sessions_ended=ended)

    # --- email verification ------------------------------------------------------------------------

    @counted("verification")
    async def verify_email(self, token: str) -> None:
        """Confirm an address with the token mailed at registration."""
        if not looks_like_token(token):
            raise TokenInvalid()
        now = self._deps.clock()
        async with self._deps.store.write() as tx:
            found = await tx.tokens.take(token_digest(token), TokenPurpose.VERIFY_EMAIL)
            if found is None:
                raise TokenInvalid()
            if now >= found.expires_at:
                raise TokenExpired()  # rolls back: the expired token stays, and stays expired
            user = await tx.users.by_id(found.user_id)
            if user is None or user.disabled:
                raise TokenInvalid()
            await tx.users.mark_verified(found.user_id, now)
        self._deps.audit("user.email_verified", user_id=found.user_id)

    async def resend_verification(self, email: str, client: Client) -> None:
        """Mail a new verification link if an unverified account has this address; at once either way."""
        canonical = await self._admit_mail_request(email, client)
        self.background.spawn(self._send_verification(canonical), "verification-resend")

    async def _send_verification(self, canonical: str) -> None:
        d = self._deps
        async with d.store.read() as tx:
            user = await tx.users.by_canonical_email(canonical)
        if user is None or user.disabled or user.email_verified_at is not None:
            return
        if not await d.throttle.allow_account_mail(canonical):
            return
        token = await self._replace_token(user.id, TokenPurpose.VERIFY_EMAIL)
        d.notifications.verify_email(user.email, token)
        d.audit("user.verification_sent", user_id=user.id)
