"""A login's second step: the mfaToken challenge a right first step opens instead of a session,
and its completion by a code of the app, a recovery code or a passkey, each try counted."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NoReturn

from doorward.core import totp
from doorward.core.deps import Deps
from doorward.core.errors import InvalidCredentials, InvalidRequest, MfaInvalid, MfaRequired, MfaTokenInvalid
from doorward.core.factor_checks import CODE_AMR, PASSWORD_AMR, FactorChecks, second_factor_methods
from doorward.core.models import CeremonyPurpose, Client, LoginResult, MfaChallenge, Session, TotpFactor, User
from doorward.core.notices import count_failed_login, device_note, mail_if_new, sighting
from doorward.core.outcomes import counted
from doorward.core.ports import Transaction
from doorward.core.relying_party import (
    CeremonyFailed,
    CredentialJson,
    RelyingParty,
    challenge_digest,
    report_clone,
    sign_count_regressed,
)
from doorward.core.tokens import looks_like_token, new_session_id, new_token, token_digest

CHALLENGE_LIFETIME = timedelta(minutes=5)
"""How long an mfaToken waits for its second factor."""

MAX_ATTEMPTS = 5
"""Codes one mfaToken may try. Each is counted before it is checked, so a burst gets no more."""

METHODS = ("totp", "recovery_code", "passkey")
"""What may complete a login, in the order the contract lists them; an account offers those it has."""


async def require_second_factor(
    deps: Deps, user: User, client: Client, new_hash: str | None, *, first_factor: str = PASSWORD_AMR
) -> NoReturn:
    """A login's end for an account with a second factor and a right first step (the password, or
    a passkey without user verification: ``first_factor``): no session, but a challenge, and
    MfaRequired carrying its token and the methods that may complete it.

    The challenge is stored only if the hash checked is still the user's (``new_hash`` replaces it
    first, as at any login), so a reset or change that committed since cannot be outrun.
    """
    token = new_token()
    now = deps.clock()
    challenge = MfaChallenge(
        token_digest(token), user.id, now, now + CHALLENGE_LIFETIME, first_factor=first_factor
    )
    seen = user.password_hash
    async with deps.store.write() as tx:
        if new_hash is not None and await tx.users.replace_password_hash(user.id, seen, new_hash, now):
            seen = new_hash
        added = await tx.factors.add_challenge(challenge, seen)
        methods = await second_factor_methods(tx, user.id, first_factor)
    if not added:
        deps.audit("login.failed", reason="changed_meanwhile", user_id=user.id, client=client.address)
        raise InvalidCredentials()
    if new_hash is not None and seen == new_hash:
        deps.audit(
            "password.rehashed", user_id=user.id, profile=deps.pool.hasher.profile.name, client=client.address
        )
    deps.audit("login.mfa_required", user_id=user.id, client=client.address, first_factor=first_factor)
    raise MfaRequired(token, methods)


async def open_challenge(deps: Deps, mfa_token: str) -> tuple[MfaChallenge, User]:
    """The sign-in an mfaToken names and its account, if the token may still complete it: known,
    unused, unexpired, not spent, its account enabled and with a second factor; else MfaTokenInvalid."""
    if not looks_like_token(mfa_token):
        raise MfaTokenInvalid()
    async with deps.store.read() as tx:
        challenge = await tx.factors.challenge(token_digest(mfa_token))
        user = await tx.users.by_id(challenge.user_id) if challenge is not None else None
    if (
        challenge is None
        or user is None
        or challenge.used_at is not None
        or challenge.attempts >= MAX_ATTEMPTS
        or deps.clock() >= challenge.expires_at
        or user.disabled
        or not user.mfa_enabled
    ):
        raise MfaTokenInvalid()
    return challenge, user


@dataclass(frozen=True)
class _PasskeyUse:
    """A verified passkey assertion of a second step, to record: its challenge taken, its count."""

    passkey_id: str
    ceremony: bytes  # the digest of the WebAuthn challenge it answered
    sign_count: int
    backed_up: bool
    method: str  # "hwk" or "swk"


@dataclass(frozen=True)
class _Claim:
    """What a second factor given at login matched: a step of the app's secret, a recovery code's
    id, or a passkey's verified assertion; nothing (and why, for the audit) when it matched none."""

    method: str
    factor: TotpFactor | None = None
    secret: str | None = field(default=None, repr=False)
    step: int | None = None
    code_id: int | None = None
    passkey: _PasskeyUse | None = None
    reason: str | None = None

    @property
    def matched(self) -> bool:
        return self.step is not None or self.code_id is not None or self.passkey is not None

    @property
    def amr(self) -> str:
        return self.passkey.method if self.passkey is not None else CODE_AMR


class SecondStep:
    """Completes the sign-in an mfaToken names; ``Mfa.complete_login`` delegates here."""

    def __init__(self, deps: Deps, checks: FactorChecks, rp: RelyingParty) -> None:
        self._deps = deps
        self._checks = checks
        self._rp = rp

    @counted("login_second_step")
    async def complete(
        self,
        mfa_token: str,
        client: Client,
        *,
        code: str | None,
        recovery_code: str | None,
        credential: CredentialJson | None,
    ) -> LoginResult:
        """The session of assurance level 2 for a right code, recovery code or passkey assertion
        (see ``Mfa.complete_login``)."""
        d = self._deps
        given = [value for value in (code, recovery_code, credential) if value is not None]
        if len(given) != 1:
            raise InvalidRequest(
                "Either a code or a recovery code is required"
                if credential is None
                else "Either a passkey or a code is required, not both"
            )
        challenge, user = await open_challenge(d, mfa_token)
        digest = challenge.digest
        attempts = await d.throttle.admit_login(user.email_canonical, client.address)
        async with d.store.write() as tx:
            counted = await tx.factors.count_attempt(digest, d.clock(), MAX_ATTEMPTS)
        if not counted:
            raise MfaTokenInvalid()  # spent or used by concurrent requests

        if credential is not None:
            claim = await self._passkey_claim(user, challenge, credential, client)
        else:
            claim = await self._claim(user, code, recovery_code)
        if not claim.matched:
            await self._wrong_code(user, client, claim)
        now = d.clock()
        try:
            async with d.store.write() as tx:
                if not await tx.factors.use_challenge(digest, now):
                    raise MfaTokenInvalid()  # used by a concurrent request
                used, left = await self._use(tx, user.id, digest, claim, now)
                if not used:  # the same code won a race in another request: this one is a replay
                    raise MfaInvalid()  # and rolls back: the token may try another code
        except MfaInvalid:
            await self._wrong_code(user, client, replace(claim, reason="replayed"))

        token = new_token()
        session = Session(
            id=new_session_id(),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + d.session_policy.lifetime,
            client_address=client.address,
            user_agent=client.user_agent,
            aal=2,
            amr=(challenge.first_factor, claim.amr),
        )
        device = device_note(d, client)
        opened = await d.store.open_session(session, token_digest(token), user.password_hash, None, device)
        if not opened:
            d.audit("login.failed", reason="changed_meanwhile", user_id=user.id, client=client.address)
            raise MfaTokenInvalid()
        await d.throttle.login_succeeded(user.email_canonical, attempts)
        if claim.passkey is not None:
            d.audit(
                "passkey.used", user_id=user.id, passkey_id=claim.passkey.passkey_id, client=client.address
            )
        elif left is None:
            d.audit("mfa.code_used", user_id=user.id, client=client.address)
        else:
            d.audit("mfa.recovery_code_used", user_id=user.id, client=client.address, left=left)
            d.notifications.recovery_code_used(user.email, left, sighting(d, client))
        d.audit("login.succeeded", user_id=user.id, session_id=session.id, client=client.address, aal=2)
        mail_if_new(d, user, device, opened)
        return LoginResult(token=token, user=user, session=session)

    async def _claim(self, user: User, code: str | None, recovery_code: str | None) -> _Claim:
        """What a code given at login matches (nothing yet used up): a step of the app, or a
        recovery code."""
        if recovery_code is not None:
            code_id = await self._checks.matching_recovery_code(user.id, recovery_code)
            return _Claim("recovery_code", code_id=code_id)
        assert code is not None
        factor = await self._checks.active_totp(user.id)
        secret = self._checks.secret(factor) if factor is not None else None
        if factor is None or secret is None:
            return _Claim("totp")
        step = totp.matching_step(secret, code, self._deps.clock(), factor.last_step)
        return _Claim("totp", factor=factor, secret=secret, step=step)

    async def _passkey_claim(
        self, user: User, challenge: MfaChallenge, credential: CredentialJson, client: Client
    ) -> _Claim:
        """What a passkey assertion given at login matches: one of the account's passkeys, answering
        a challenge of ``second_step_options`` for this very sign-in (nothing yet used up)."""
        d = self._deps
        if challenge.first_factor != PASSWORD_AMR:
            return _Claim("passkey", reason="first_step_was_a_passkey")
        try:
            assertion = self._rp.read_assertion(credential)
        except CeremonyFailed as exc:
            return _Claim("passkey", reason=str(exc))
        ceremony_digest = challenge_digest(assertion.challenge)
        async with d.store.read() as tx:
            ceremony = await tx.passkeys.challenge(ceremony_digest)
            passkey = await tx.passkeys.by_credential_id(assertion.credential_id)
        if (
            ceremony is None
            or ceremony.purpose is not CeremonyPurpose.SECOND_STEP
            or ceremony.mfa_digest != challenge.digest
            or ceremony.used_at is not None
            or d.clock() >= ceremony.expires_at
        ):
            return _Claim("passkey", reason="challenge")
        if passkey is None or passkey.user_id != user.id:
            return _Claim("passkey", reason="unknown_credential")
        if assertion.user_handle is not None and assertion.user_handle != passkey.user_handle:
            return _Claim("passkey", reason="user_handle")
        try:
            verified = self._rp.verify_assertion(assertion, passkey)
        except CeremonyFailed as exc:
            return _Claim("passkey", reason=str(exc))
        if sign_count_regressed(passkey.sign_count, verified.sign_count):
            report_clone(d, user, passkey, verified.sign_count, client)
            return _Claim("passkey", reason="sign_count_regressed")
        use = _PasskeyUse(
            passkey.id, ceremony_digest, verified.sign_count, verified.backed_up, verified.method
        )
        return _Claim("passkey", passkey=use)

    async def _use(
        self, tx: Transaction, user_id: int, mfa_digest: bytes, claim: _Claim, now: datetime
    ) -> tuple[bool, int | None]:
        """Use up what ``claim`` matched, with a compare-and-set; whether it was still there, and
        (for a recovery code) how many are left."""
        factors = tx.factors
        if claim.passkey is not None:
            use = claim.passkey
            taken = await tx.passkeys.take_challenge(
                use.ceremony, CeremonyPurpose.SECOND_STEP, now, user_id=user_id, mfa_digest=mfa_digest
            )
            return taken and await tx.passkeys.record_use(
                use.passkey_id, use.sign_count, use.backed_up, now
            ), None
        if claim.code_id is not None:
            used = await factors.use_recovery_code(claim.code_id, now)
            return used, len(await factors.recovery_codes(user_id))
        assert claim.factor is not None
        assert claim.secret is not None
        assert claim.step is not None
        used = await factors.use_totp_step(user_id, claim.step)
        if used and (blob := self._checks.resealed(claim.factor, claim.secret)) is not None:
            await factors.replace_totp_secret(user_id, claim.factor.secret, blob)  # to the newest key
        return used, None

    async def _wrong_code(self, user: User, client: Client, claim: _Claim) -> NoReturn:
        """A wrong or replayed code or passkey at login: counted by the throttle like a failed password."""
        await count_failed_login(self._deps, user.email_canonical, user, client)
        detail: dict[str, object] = {"reason": claim.reason} if claim.reason is not None else {}
        self._deps.audit(
            "mfa.code_failed", user_id=user.id, client=client.address, method=claim.method, **detail
        )
        raise MfaInvalid()
