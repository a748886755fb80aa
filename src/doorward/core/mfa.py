"""Multi-factor login: setting up and removing an authenticator app (TOTP) and its recovery codes,
and a login's second step (its challenge and checks are in second_step.py and factor_checks.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from doorward.core import totp
from doorward.core.deps import Deps
from doorward.core.errors import CodeInvalid, LastFactor, MfaNotEnabled, TotpActive, TotpNotPending
from doorward.core.factor_checks import FactorChecks, has_factor
from doorward.core.models import Client, LoginResult, User
from doorward.core.notices import sighting
from doorward.core.reauth import reauthenticate, require_assurance
from doorward.core.relying_party import CredentialJson, RelyingParty
from doorward.core.second_step import SecondStep
from doorward.core.secret_box import SecretBox


@dataclass(frozen=True)
class MfaStatus:
    """What the account section shows: whether the app is active, and the unused recovery codes."""

    totp: bool
    recovery_codes_left: int


@dataclass(frozen=True)
class TotpEnrolment:
    """A pending secret, shown to its user once: as text and as the URI a QR code carries."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)


class Mfa:
    """Every use case of a second factor. Changing one takes the current password (the step-up)
    and mails the user; a login's second step opens a session of assurance level 2."""

    def __init__(self, deps: Deps, box: SecretBox, rp: RelyingParty) -> None:
        self._deps = deps
        self._checks = FactorChecks(deps, box)
        self._second_step = SecondStep(deps, self._checks, rp)

    async def status(self, user: User) -> MfaStatus:
        """Whether TOTP is active, and how many recovery codes are left."""
        async with self._deps.store.read() as tx:
            factor = await tx.factors.totp(user.id)
            active = factor is not None and factor.confirmed_at is not None
            left = len(await tx.factors.recovery_codes(user.id)) if active else 0
        return MfaStatus(totp=active, recovery_codes_left=left)

    # --- set-up and removal ------------------------------------------------------------------------

    async def begin_totp(self, user: User, password: str, client: Client, *, aal: int) -> TotpEnrolment:
        """A new pending secret, replacing a pending one; not active until ``confirm_totp``. ``aal``
        (here and below) is the asking session's: an account with a passkey sets the app up from
        level 2 only (Aal2Required)."""
        d = self._deps
        if await self._checks.active_totp(user.id) is not None:
            raise TotpActive()
        await require_assurance(d, user, aal)
        attempts = (await reauthenticate(d, user, password, client, purpose="totp_enrol")).attempts
        secret = totp.new_secret()
        blob = self._checks.seal(user.id, secret)
        async with d.store.write() as tx:
            saved = await tx.factors.save_pending_totp(user.id, blob, d.clock())
        if not saved:
            raise TotpActive()  # confirmed by a concurrent request
        await d.throttle.login_succeeded(user.email_canonical, attempts)  # no factor yet: as a login
        d.audit("mfa.totp_enrolled", user_id=user.id, client=client.address)
        return TotpEnrolment(secret, totp.otpauth_uri(secret, user.email))

    async def confirm_totp(self, user: User, code: str, client: Client, *, aal: int) -> list[str]:
        """Activate the pending secret with a code from the app; return the recovery codes, the only
        time they are shown."""
        d = self._deps
        async with d.store.read() as tx:
            factor = await tx.factors.totp(user.id)
        if factor is None:
            raise TotpNotPending()
        if factor.confirmed_at is not None:
            raise TotpActive()
        await require_assurance(d, user, aal)  # a passkey may have come since the set-up began
        step = self._checks.matching_step(factor, code)
        if step is None:
            d.audit("mfa.code_failed", user_id=user.id, client=client.address, purpose="confirm")
            raise CodeInvalid()
        codes, hashes = await self._checks.new_recovery_codes()
        now = d.clock()
        async with d.store.write() as tx:
            if not await tx.factors.confirm_totp(user.id, factor.secret, step, now):
                raise TotpNotPending()  # replaced by a new set-up meanwhile: confirm that one
            await tx.factors.replace_recovery_codes(user.id, hashes, now)
            await tx.factors.set_mfa_enabled(user.id, True, now)
        d.notifications.totp_enabled(user.email, sighting(d, client))
        d.audit("mfa.totp_confirmed", user_id=user.id, client=client.address)
        return codes

    async def disable_totp(self, user: User, password: str, code: str, client: Client, *, aal: int) -> None:
        """Turn two-step verification off, proven by the password and a code (from the app, or a
        recovery code); the factor, the codes and any sign-in waiting for them go. Under
        DOORWARD_REQUIRE_MFA the account's last second factor stays (LastFactor)."""
        d = self._deps
        factor = await self._checks.active_totp(user.id)
        if factor is None:
            raise MfaNotEnabled()
        await require_assurance(d, user, aal)
        if d.account_policy.require_mfa:  # the app may go only while another factor stays
            async with d.store.read() as tx:
                if not await tx.passkeys.for_user(user.id):
                    raise LastFactor()
        proof = await reauthenticate(
            d, user, password, client, code=code, factors=self._checks, purpose="disable"
        )
        attempts = proof.attempts
        async with d.store.write() as tx:
            # The account's row first, as the passkey's removal does: the two take turns, so the
            # check of the factor left sees the other's removal (else both go under the policy).
            await tx.users.by_id(user.id, for_update=True)
            if not await tx.factors.delete_totp(user.id):
                raise MfaNotEnabled()  # turned off by a concurrent request
            await tx.factors.delete_recovery_codes(user.id)
            await tx.factors.delete_challenges(user.id)
            # A passkey left is a second factor still: the password alone does not sign in.
            left = await has_factor(tx, user.id)
            if d.account_policy.require_mfa and not left:
                raise LastFactor()  # the passkey went meanwhile: the app stays (rolled back)
            await tx.factors.set_mfa_enabled(user.id, left, d.clock())
        await d.throttle.login_succeeded(user.email_canonical, attempts)
        d.notifications.totp_disabled(user.email, sighting(d, client))
        d.audit("mfa.totp_disabled", user_id=user.id, client=client.address)

    async def regenerate_codes(self, user: User, password: str, client: Client, *, aal: int) -> list[str]:
        """A new set of recovery codes, shown this once; the old set is void."""
        d = self._deps
        if await self._checks.active_totp(user.id) is None:
            raise MfaNotEnabled()
        await require_assurance(d, user, aal)
        # A password alone does not reset the account's failures: for an account with a second
        # factor only a complete proof does (as at login).
        await reauthenticate(d, user, password, client, purpose="recovery_codes")
        codes, hashes = await self._checks.new_recovery_codes()
        now = d.clock()
        async with d.store.write() as tx:
            factor = await tx.factors.totp(user.id)
            if factor is None or factor.confirmed_at is None:
                raise MfaNotEnabled()
            await tx.factors.replace_recovery_codes(user.id, hashes, now)
        d.notifications.recovery_codes_regenerated(user.email, sighting(d, client))
        d.audit("mfa.recovery_codes_regenerated", user_id=user.id, client=client.address)
        return codes

    async def complete_login(
        self,
        mfa_token: str,
        client: Client,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
        credential: CredentialJson | None = None,
    ) -> LoginResult:
        """The session a login's first step held back, for a right ``code`` (from the app),
        ``recovery_code`` or passkey ``credential`` (an assertion answering ``second_step_options``
        of core/passkeys.py): assurance level 2.

        A token that is unknown, used, expired or spent (``second_step.MAX_ATTEMPTS`` tries) is
        MfaTokenInvalid; a wrong or replayed code or assertion MfaInvalid, counted against the account
        as a failed login. The three take the same path: one attempt counted per try, one use of the
        token.
        """
        return await self._second_step.complete(
            mfa_token, client, code=code, recovery_code=recovery_code, credential=credential
        )
