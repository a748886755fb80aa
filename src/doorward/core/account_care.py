"""An account holder's own care of the account: a new email address, and deleting the account.

Both re-authenticate through core/reauth.py. An email change is mailed twice: a single-use link
to the new address that makes the switch, and a notice to the current one whose "this wasn't me"
link ends every session, keeps (or restores) that address and mails a password reset. A deletion
goes through core/deletion.py, the path the administrator's deletion takes.
"""

from __future__ import annotations

from doorward.core.accounts import Accounts
from doorward.core.admin_records import Actor
from doorward.core.deletion import delete_account
from doorward.core.deps import Deps
from doorward.core.emails import canonical_email, validate_new_email
from doorward.core.errors import EmailTaken, InvalidRequest, TokenExpired, TokenInvalid
from doorward.core.factor_checks import FactorChecks
from doorward.core.models import AccountToken, Client, Session, TokenPurpose, User
from doorward.core.reauth import reauthenticate
from doorward.core.secret_box import SecretBox
from doorward.core.tokens import looks_like_token, new_token, token_digest


class SameEmail(InvalidRequest):
    """The new address is the account's address already (in its canonical form)."""

    code = "email_unchanged"
    message = "This is already your email address"


class AccountCare:
    """Change of email and self-service deletion. Framework-free."""

    def __init__(self, deps: Deps, box: SecretBox, accounts: Accounts) -> None:
        self._deps = deps
        self._factors = FactorChecks(deps, box)
        self._accounts = accounts

    # --- change of email -------------------------------------------------------------------------

    async def request_email_change(self, user: User, password: str, new_email: str, client: Client) -> None:
        """Mail the change's link to ``new_email`` and the notice to the current address.

        The answer is the same whether or not another account has ``new_email``: the lookup and
        the mails happen in the background, and a taken address gets no link (the current one
        gets its notice either way).
        """
        d = self._deps
        stored = validate_new_email(new_email)
        canonical = canonical_email(new_email)
        proof = await reauthenticate(d, user, password, client, purpose="email_change")
        if canonical == user.email_canonical:
            raise SameEmail()
        if not user.mfa_enabled:  # with a second factor, only a complete proof resets failures
            await d.throttle.login_succeeded(user.email_canonical, proof.attempts)
        d.background.spawn(self._mail_change(user, stored, canonical, client), "email-change")

    async def _mail_change(self, user: User, stored: str, canonical: str, client: Client) -> None:
        d = self._deps
        now = d.clock()
        lifetime = d.account_policy.verification_token_lifetime
        confirm, revert = new_token(), new_token()
        async with d.store.write() as tx:
            taken = await tx.users.by_canonical_email(canonical) is not None
            await tx.tokens.delete_for_user(user.id, TokenPurpose.EMAIL_CHANGE)  # one change at a time
            if not taken:
                await tx.tokens.add(
                    AccountToken(
                        token_digest(confirm), user.id, TokenPurpose.EMAIL_CHANGE, now, now + lifetime, stored
                    )
                )
            await tx.tokens.add(
                AccountToken(
                    token_digest(revert), user.id, TokenPurpose.EMAIL_REVERT, now, now + lifetime, user.email
                )
            )
        if not taken:
            d.notifications.email_change_confirm(stored, confirm)
        d.notifications.email_change_notice(user.email, revert)
        d.audit(
            "email.change_requested",
            user_id=user.id,
            client=client.address,
            outcome="taken" if taken else "mailed",
        )

    async def confirm_email_change(self, token: str, current: Session | None = None) -> User:
        """Make the token's address the account's; every session ends but ``current`` (the one that
        followed the link, if it is the account's). EmailTaken when another account took the
        address meanwhile (checked again inside the transaction; the unique index decides a race)."""
        d = self._deps
        if not looks_like_token(token):
            raise TokenInvalid()
        now = d.clock()
        async with d.store.write() as tx:
            found = await tx.tokens.take(token_digest(token), TokenPurpose.EMAIL_CHANGE)
            if found is None or found.detail is None:
                raise TokenInvalid()
            if now >= found.expires_at:
                raise TokenExpired()  # rolls back: the expired token stays, and stays expired
            user = await tx.users.by_id(found.user_id)
            if user is None or user.disabled:
                raise TokenInvalid()
            canonical = canonical_email(found.detail)
            other = await tx.users.by_canonical_email(canonical)
            if other is not None and other.id != user.id:
                raise EmailTaken()
            await tx.users.set_email(user.id, found.detail, canonical, now)
            keep = current.id if current is not None and current.user_id == user.id else None
            ended = await tx.sessions.delete_for_user(user.id, keep=keep)
            # Links mailed to the old address no longer apply to the account's new one.
            await tx.tokens.delete_for_user(user.id, TokenPurpose.RESET_PASSWORD)
            await tx.tokens.delete_for_user(user.id, TokenPurpose.VERIFY_EMAIL)
            changed = await tx.users.by_id(user.id)
        assert changed is not None
        d.audit("email.changed", user_id=user.id, sessions_ended=ended)
        return changed

    async def revert_email_change(self, token: str) -> None:
        """ "This wasn't me": every session ends, a pending change is void, the address the notice
        went to is the account's again (unless another account took it meanwhile), and a password
        reset link is mailed to it."""
        d = self._deps
        if not looks_like_token(token):
            raise TokenInvalid()
        now = d.clock()
        async with d.store.write() as tx:
            found = await tx.tokens.take(token_digest(token), TokenPurpose.EMAIL_REVERT)
            if found is None or found.detail is None:
                raise TokenInvalid()
            if now >= found.expires_at:
                raise TokenExpired()
            # Locked: a confirm of the change in flight commits first, and its new address is seen
            # here (read before it, the old one looked current, nothing was restored, and the reset
            # link went to the new address).
            user = await tx.users.by_id(found.user_id, for_update=True)
            if user is None or user.disabled:
                raise TokenInvalid()
            canonical = canonical_email(found.detail)
            restored = False
            if canonical != user.email_canonical and await tx.users.by_canonical_email(canonical) is None:
                await tx.users.set_email(user.id, found.detail, canonical, now)
                restored = True
            ended = await tx.sessions.delete_for_user(user.id)
            for purpose in (TokenPurpose.EMAIL_CHANGE, TokenPurpose.EMAIL_REVERT):
                await tx.tokens.delete_for_user(user.id, purpose)
            await tx.factors.delete_challenges(user.id)
            await tx.passkeys.delete_challenges(user.id)
            now_user = await tx.users.by_id(user.id)
        assert now_user is not None
        await self._accounts.mail_reset_link(now_user)
        d.audit("email.change_reverted", user_id=user.id, sessions_ended=ended, restored=restored)

    # --- deletion ---------------------------------------------------------------------------------

    async def delete(self, user: User, password: str, code: str | None, client: Client) -> None:
        """Delete the account, proven by the password and, when the app is enrolled, one of its codes
        (or a recovery code): everything goes at once (core/deletion.py); a last mail confirms it."""
        d = self._deps
        await reauthenticate(d, user, password, client, code=code, factors=self._factors, purpose="delete")
        await delete_account(d, user, by="self", actor=Actor(via="self", client=client.address))
        d.notifications.account_deleted(user.email)
