"""Multi-factor login: an authenticator app (TOTP) and recovery codes, and a login's second step
(with those, or a passkey)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NoReturn

from doorward.core import recovery_codes, totp
from doorward.core.deps import Deps
from doorward.core.errors import (
    CodeInvalid,
    InvalidCredentials,
    InvalidCurrentPassword,
    InvalidRequest,
    MfaInvalid,
    MfaNotEnabled,
    MfaRequired,
    MfaTokenInvalid,
    TotpActive,
    TotpNotPending,
)
from doorward.core.models import (
    AttemptState,
    CeremonyPurpose,
    Client,
    LoginResult,
    MfaChallenge,
    Session,
    TotpFactor,
    User,
)
from doorward.core.passwords import Password
from doorward.core.ports import Transaction
from doorward.core.relying_party import (
    CeremonyFailed,
    CredentialJson,
    RelyingParty,
    challenge_digest,
    report_clone,
    sign_count_regressed,
)
from doorward.core.secret_box import SecretBox, SecretUndecryptable
from doorward.core.tokens import looks_like_token, new_session_id, new_token, token_digest

CHALLENGE_LIFETIME = timedelta(minutes=5)
"""How long an mfaToken waits for its second factor."""

MAX_ATTEMPTS = 5
"""Codes one mfaToken may try. Each is counted before it is checked, so a burst gets no more."""

METHODS = ("totp", "recovery_code", "passkey")
"""What may complete a login, in the order the contract lists them; an account offers those it has."""

PASSWORD_AMR = "pwd"  # noqa: S105 - RFC 8176: what a first step with the password proved
CODE_AMR = "otp"  # RFC 8176: a one-time code (from the app, or a recovery code)

_log = logging.getLogger("doorward.mfa")


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


def _context(user_id: int) -> bytes:
    """What a TOTP secret's blob is bound to: its row, so a blob copied to another account fails."""
    return b"totp:%d" % user_id


async def second_factor_methods(
    tx: Transaction, user_id: int, first_factor: str = PASSWORD_AMR
) -> tuple[str, ...]:
    """What may complete a sign-in of this account begun with ``first_factor``: the app and its
    recovery codes when TOTP is on, a passkey when the account has one and the first step was the
    password (a passkey is not two factors with itself)."""
    factor = await tx.factors.totp(user_id)
    methods: list[str] = []
    if factor is not None and factor.confirmed_at is not None:
        methods += ["totp", "recovery_code"]
    if first_factor == PASSWORD_AMR and await tx.passkeys.for_user(user_id):
        methods.append("passkey")
    return tuple(methods)


async def has_factor(tx: Transaction, user_id: int) -> bool:
    """Whether the account has a second factor left (an active app or a passkey): what
    ``users.mfa_enabled`` must say after a factor went."""
    factor = await tx.factors.totp(user_id)
    return (factor is not None and factor.confirmed_at is not None) or bool(
        await tx.passkeys.for_user(user_id)
    )


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
        deps.audit("password.rehashed", user_id=user.id, profile=deps.pool.hasher.profile.name)
    deps.audit("login.mfa_required", user_id=user.id, client=client.address, first_factor=first_factor)
    raise MfaRequired(token, methods)


async def step_up(deps: Deps, user: User, password: str, client: Client) -> AttemptState:
    """The one re-authentication before a factor changes: the current password, checked as a
    password change checks it (throttled, a wrong one counted). The caller resets the account's
    failures when it is done, if the account has no second factor (else only a complete proof does)."""
    attempts = await deps.throttle.admit_login(user.email_canonical, client.address)
    try:
        secret = Password(password)
    except InvalidRequest as exc:
        raise InvalidCurrentPassword() from exc
    if not (await deps.verify(user.password_hash, secret)).ok:
        await deps.throttle.login_failed(user.email_canonical, client.address)
        deps.audit("mfa.step_up_failed", user_id=user.id, client=client.address)
        raise InvalidCurrentPassword()
    return attempts


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


class Mfa:
    """Every use case of a second factor. Changing one takes the current password (the step-up)
    and mails the user; a login's second step opens a session of assurance level 2."""

    def __init__(self, deps: Deps, box: SecretBox, rp: RelyingParty) -> None:
        self._deps = deps
        self._box = box
        self._rp = rp

    async def status(self, user: User) -> MfaStatus:
        """Whether TOTP is active, and how many recovery codes are left."""
        async with self._deps.store.read() as tx:
            factor = await tx.factors.totp(user.id)
            active = factor is not None and factor.confirmed_at is not None
            left = len(await tx.factors.recovery_codes(user.id)) if active else 0
        return MfaStatus(totp=active, recovery_codes_left=left)

    # --- set-up and removal ------------------------------------------------------------------------

    async def begin_totp(self, user: User, password: str, client: Client) -> TotpEnrolment:
        """A new pending secret, replacing a pending one; not active until ``confirm_totp``."""
        d = self._deps
        if await self._active_factor(user.id) is not None:
            raise TotpActive()
        attempts = await self._step_up(user, password, client)
        secret = totp.new_secret()
        blob = self._box.encrypt(secret.encode("ascii"), _context(user.id))
        async with d.store.write() as tx:
            saved = await tx.factors.save_pending_totp(user.id, blob, d.clock())
        if not saved:
            raise TotpActive()  # confirmed by a concurrent request
        await d.throttle.login_succeeded(user.email_canonical, attempts)  # no factor yet: as a login
        d.audit("mfa.totp_enrolled", user_id=user.id, client=client.address)
        return TotpEnrolment(secret, totp.otpauth_uri(secret, user.email))

    async def confirm_totp(self, user: User, code: str, client: Client) -> list[str]:
        """Activate the pending secret with a code from the app; return the recovery codes, the only
        time they are shown."""
        d = self._deps
        async with d.store.read() as tx:
            factor = await tx.factors.totp(user.id)
        if factor is None:
            raise TotpNotPending()
        if factor.confirmed_at is not None:
            raise TotpActive()
        step = self._matching_step(factor, code)
        if step is None:
            d.audit("mfa.code_failed", user_id=user.id, client=client.address, purpose="confirm")
            raise CodeInvalid()
        codes, hashes = await self._new_codes()
        now = d.clock()
        async with d.store.write() as tx:
            if not await tx.factors.confirm_totp(user.id, factor.secret, step, now):
                raise TotpNotPending()  # replaced by a new set-up meanwhile: confirm that one
            await tx.factors.replace_recovery_codes(user.id, hashes, now)
            await tx.factors.set_mfa_enabled(user.id, True, now)
        d.notifications.totp_enabled(user.email)
        d.audit("mfa.totp_confirmed", user_id=user.id, client=client.address)
        return codes

    async def disable_totp(self, user: User, password: str, code: str, client: Client) -> None:
        """Turn two-step verification off, proven by the password and a code (from the app, or a
        recovery code); the factor, the codes and any sign-in waiting for them go."""
        d = self._deps
        factor = await self._active_factor(user.id)
        if factor is None:
            raise MfaNotEnabled()
        attempts = await self._step_up(user, password, client)
        if totp.clean_code(code) is None:  # not six digits: a recovery code, if anything
            proven = await self._matching_recovery_code(user.id, code) is not None
        else:
            proven = self._matching_step(factor, code) is not None
        if not proven:
            await d.throttle.login_failed(user.email_canonical, client.address)
            d.audit("mfa.code_failed", user_id=user.id, client=client.address, purpose="disable")
            raise CodeInvalid()
        async with d.store.write() as tx:
            if not await tx.factors.delete_totp(user.id):
                raise MfaNotEnabled()  # turned off by a concurrent request
            await tx.factors.delete_recovery_codes(user.id)
            await tx.factors.delete_challenges(user.id)
            # A passkey left is a second factor still: the password alone does not sign in.
            await tx.factors.set_mfa_enabled(user.id, await has_factor(tx, user.id), d.clock())
        await d.throttle.login_succeeded(user.email_canonical, attempts)
        d.notifications.totp_disabled(user.email)
        d.audit("mfa.totp_disabled", user_id=user.id, client=client.address)

    async def regenerate_codes(self, user: User, password: str, client: Client) -> list[str]:
        """A new set of recovery codes, shown this once; the old set is void."""
        d = self._deps
        if await self._active_factor(user.id) is None:
            raise MfaNotEnabled()
        # A password alone does not reset the account's failures: for an account with a second
        # factor only a complete proof does (as at login).
        await self._step_up(user, password, client)
        codes, hashes = await self._new_codes()
        now = d.clock()
        async with d.store.write() as tx:
            factor = await tx.factors.totp(user.id)
            if factor is None or factor.confirmed_at is None:
                raise MfaNotEnabled()
            await tx.factors.replace_recovery_codes(user.id, hashes, now)
        d.notifications.recovery_codes_regenerated(user.email)
        d.audit("mfa.recovery_codes_regenerated", user_id=user.id, client=client.address)
        return codes

    # --- a login's second step -----------------------------------------------------------------------

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

        A token that is unknown, used, expired or spent (``MAX_ATTEMPTS`` tries) is MfaTokenInvalid;
        a wrong or replayed code or assertion MfaInvalid, counted against the account as a failed
        login. The three take the same path: one attempt counted per try, one use of the token.
        """
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
        if not await d.store.open_session(session, token_digest(token), user.password_hash):
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
            d.notifications.recovery_code_used(user.email, left)
        d.audit("login.succeeded", user_id=user.id, session_id=session.id, client=client.address, aal=2)
        return LoginResult(token=token, user=user, session=session)

    # --- helpers -----------------------------------------------------------------------------------

    async def _claim(self, user: User, code: str | None, recovery_code: str | None) -> _Claim:
        """What a code given at login matches (nothing yet used up): a step of the app, or a
        recovery code."""
        if recovery_code is not None:
            return _Claim("recovery_code", code_id=await self._matching_recovery_code(user.id, recovery_code))
        assert code is not None
        factor = await self._active_factor(user.id)
        secret = self._secret(factor) if factor is not None else None
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
        if used and not self._box.is_current(claim.factor.secret):  # an old key: move to the newest
            blob = self._box.encrypt(claim.secret.encode("ascii"), _context(user_id))
            await factors.replace_totp_secret(user_id, claim.factor.secret, blob)
        return used, None

    async def _wrong_code(self, user: User, client: Client, claim: _Claim) -> NoReturn:
        """A wrong or replayed code or passkey at login: counted by the throttle like a failed password."""
        await self._deps.throttle.login_failed(user.email_canonical, client.address)
        detail: dict[str, object] = {"reason": claim.reason} if claim.reason is not None else {}
        self._deps.audit(
            "mfa.code_failed", user_id=user.id, client=client.address, method=claim.method, **detail
        )
        raise MfaInvalid()

    async def _step_up(self, user: User, password: str, client: Client) -> AttemptState:
        return await step_up(self._deps, user, password, client)

    async def _active_factor(self, user_id: int) -> TotpFactor | None:
        async with self._deps.store.read() as tx:
            factor = await tx.factors.totp(user_id)
        return factor if factor is not None and factor.confirmed_at is not None else None

    def _secret(self, factor: TotpFactor) -> str | None:
        """The factor's secret in clear, or None (logged as an error) when no configured key opens it.

        The user then sees a wrong code, not a 500: a recovery code still works, and the operator
        is told that DOORWARD_SECRET_KEYS lost the key the secret was made with.
        """
        try:
            return self._box.decrypt(factor.secret, _context(factor.user_id)).decode("ascii")
        except SecretUndecryptable as exc:
            _log.error(
                "a TOTP secret cannot be decrypted: is its key missing from DOORWARD_SECRET_KEYS?",
                extra={"user_id": factor.user_id, "reason": str(exc)},
            )
            return None

    def _matching_step(self, factor: TotpFactor, code: str) -> int | None:
        secret = self._secret(factor)
        if secret is None:
            return None
        return totp.matching_step(secret, code, self._deps.clock(), factor.last_step)

    async def _matching_recovery_code(self, user_id: int, text: str) -> int | None:
        """The id of the unused recovery code ``text`` is, if any (one hash verification per code)."""
        normalised = recovery_codes.normalise(text)
        if normalised is None:
            return None
        async with self._deps.store.read() as tx:
            stored = await tx.factors.recovery_codes(user_id)
        candidate = Password(normalised)
        for code in stored:
            if (await self._deps.verify(code.code_hash, candidate)).ok:
                return code.id
        return None

    async def _new_codes(self) -> tuple[list[str], list[str]]:
        """Fresh recovery codes as shown, and their hashes as stored (argon2id, on the hash pool)."""
        codes = recovery_codes.new_codes()
        hashes = []
        for code in codes:
            normalised = recovery_codes.normalise(code)
            assert normalised is not None
            hashes.append(await self._deps.hash(Password(normalised)))
        return codes, hashes
