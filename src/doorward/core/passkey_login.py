"""Signing in with a passkey alone: request options that name no account, and the assertion that
answers them, both factors when the authenticator verified its user, else one and a second step."""

from __future__ import annotations

import hmac
from typing import NoReturn

from webauthn.helpers.structs import UserVerificationRequirement

from doorward.core.deps import Deps
from doorward.core.errors import EmailUnverified, InvalidCredentials
from doorward.core.factor_checks import second_factor_methods
from doorward.core.models import CeremonyPurpose, Client, LoginResult, Session, User, WebauthnChallenge
from doorward.core.notices import device_note, mail_if_new
from doorward.core.outcomes import counted
from doorward.core.passkey_errors import UserVerificationRequired
from doorward.core.relying_party import (
    CHALLENGE_LIFETIME,
    CeremonyFailed,
    CredentialJson,
    RelyingParty,
    challenge_digest,
    new_challenge,
    report_clone,
    sign_count_regressed,
)
from doorward.core.second_step import require_second_factor
from doorward.core.tokens import new_session_id, new_token, token_digest

USER_PRESENT_AMR = "user"  # RFC 8176: the authenticator verified its user (PIN, biometrics)


class PasskeyLogin:
    """A sign-in with a passkey alone; ``Passkeys.login_options`` and ``Passkeys.login`` delegate here."""

    def __init__(self, deps: Deps, rp: RelyingParty) -> None:
        self._deps = deps
        self._rp = rp

    async def options(self) -> dict[str, object]:
        """Request options naming no account (see ``Passkeys.login_options``)."""
        d = self._deps
        challenge = new_challenge()
        now = d.clock()
        async with d.store.write() as tx:
            await tx.passkeys.add_challenge(
                WebauthnChallenge(
                    challenge_digest(challenge), CeremonyPurpose.LOGIN, now, now + CHALLENGE_LIFETIME
                )
            )
        return self._rp.request_options(
            challenge=challenge, allow=[], user_verification=UserVerificationRequirement.PREFERRED
        )

    @counted("login_passkey")
    async def login(self, credential: CredentialJson, client: Client) -> LoginResult:
        """A session, a second step or a refusal for an assertion (see ``Passkeys.login``)."""
        d = self._deps
        await d.throttle.admit_client(client.address)
        try:
            assertion = self._rp.read_assertion(credential)
        except CeremonyFailed as exc:
            await self._login_failed(client, str(exc))
        now = d.clock()
        async with d.store.write() as tx:
            taken = await tx.passkeys.take_challenge(
                challenge_digest(assertion.challenge), CeremonyPurpose.LOGIN, now
            )
        if not taken:  # unknown, used (a replay), expired, or another ceremony's
            await self._login_failed(client, "challenge")
        async with d.store.read() as tx:
            passkey = await tx.passkeys.by_credential_id(assertion.credential_id)
            user = await tx.users.by_id(passkey.user_id) if passkey is not None else None
        if passkey is None or user is None:
            await self._login_failed(client, "unknown_credential")
        if assertion.user_handle is not None and not hmac.compare_digest(
            assertion.user_handle, passkey.user_handle
        ):
            await self._login_failed(client, "user_handle", user)
        try:
            verified = self._rp.verify_assertion(assertion, passkey)
        except CeremonyFailed as exc:
            await self._login_failed(client, str(exc), user)
        if sign_count_regressed(passkey.sign_count, verified.sign_count):
            report_clone(d, user, passkey, verified.sign_count, client)
            await self._login_failed(client, "sign_count_regressed", user)
        async with d.store.write() as tx:
            recorded = await tx.passkeys.record_use(passkey.id, verified.sign_count, verified.backed_up, now)
        if not recorded:  # a concurrent sign-in with this passkey counted as far or further
            await self._login_failed(client, "sign_count_raced", user)
        if user.disabled:
            await self._login_failed(client, "disabled", user)
        if d.account_policy.require_email_verification and user.email_verified_at is None:
            d.audit("login.unverified", user_id=user.id, client=client.address)
            raise EmailUnverified()

        amr: tuple[str, ...]
        if verified.user_verified:
            aal, amr = 2, (verified.method, USER_PRESENT_AMR)
        elif user.mfa_enabled:  # one factor where the account needs two
            async with d.store.read() as tx:
                others = await second_factor_methods(tx, user.id, verified.method)
            if not others:
                d.audit(
                    "passkey.login_failed",
                    reason="user_verification_required",
                    user_id=user.id,
                    client=client.address,
                )
                raise UserVerificationRequired()
            await require_second_factor(d, user, client, None, first_factor=verified.method)
        else:
            aal, amr = 1, (verified.method,)
        token = new_token()
        session = Session(
            id=new_session_id(),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + d.session_policy.lifetime,
            client_address=client.address,
            user_agent=client.user_agent,
            aal=aal,
            amr=amr,
        )
        device = device_note(d, client)
        opened = await d.store.open_session(session, token_digest(token), user.password_hash, None, device)
        if not opened:
            await self._login_failed(client, "changed_meanwhile", user)  # disabled meanwhile
        d.audit("passkey.used", user_id=user.id, passkey_id=passkey.id, client=client.address)
        d.audit(
            "login.succeeded",
            user_id=user.id,
            session_id=session.id,
            client=client.address,
            aal=aal,
            method="passkey",
        )
        mail_if_new(d, user, device, opened)
        enrollment = d.account_policy.require_mfa and not user.mfa_enabled
        return LoginResult(token, user, session, mfa_enrollment_required=enrollment)

    async def _login_failed(self, client: Client, reason: str, user: User | None = None) -> NoReturn:
        self._deps.audit(
            "passkey.login_failed",
            reason=reason,
            user_id=user.id if user is not None else None,
            client=client.address,
        )
        await self._deps.throttle.client_failed(client.address)
        raise InvalidCredentials()
