"""Passkeys: add, list, rename and remove them, sign in with one alone (run by passkey_login.py), or
use one as the second step after the password (the assertion then completes ``Mfa.complete_login``)."""

from __future__ import annotations

import builtins
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from webauthn.helpers.structs import UserVerificationRequirement

from doorward.core.deps import Deps
from doorward.core.errors import InvalidRequest, LastFactor
from doorward.core.factor_checks import PASSWORD_AMR, has_factor
from doorward.core.models import (
    CeremonyPurpose,
    Client,
    LoginResult,
    Passkey,
    User,
    WebauthnChallenge,
)
from doorward.core.notices import sighting
from doorward.core.passkey_errors import PasskeyInvalid, PasskeyLimit, PasskeyNotFound
from doorward.core.passkey_login import PasskeyLogin
from doorward.core.reauth import reauthenticate, require_assurance
from doorward.core.relying_party import (
    CHALLENGE_LIFETIME,
    CeremonyFailed,
    CredentialJson,
    RelyingParty,
    challenge_digest,
    new_challenge,
)
from doorward.core.second_step import open_challenge
from doorward.core.tokens import looks_like_session_id, new_session_id

MAX_PASSKEYS = 20
"""Passkeys one account may have."""

MAX_NAME_LENGTH = 64
"""Code points of a passkey's name."""

USER_HANDLE_BYTES = 32
"""WebAuthn's user.id: random, the same for every passkey of an account, and nothing else about it."""


@dataclass(frozen=True)
class PasskeyInfo:
    """A passkey as its owner sees it in a list: never its key or credential id."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool


def _info(passkey: Passkey) -> PasskeyInfo:
    return PasskeyInfo(passkey.id, passkey.name, passkey.created_at, passkey.last_used_at, passkey.backed_up)


def clean_name(name: str | None) -> str | None:
    """A passkey's name as given, trimmed; None when there is none. At most 64 code points, and no
    control characters (the name goes into mails and pages)."""
    if name is None or not name.strip():
        return None
    name = unicodedata.normalize("NFC", name.strip())
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"A passkey's name must be at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"} for char in name):
        raise InvalidRequest("A passkey's name must not contain control characters")
    return name


class Passkeys:
    """Every use case of a passkey. Adding and removing one take the current password (the
    step-up) and mail the user; a sign-in with one alone opens a session of assurance level 2 when
    the authenticator verified its user (PIN, biometrics), and asks for a second step otherwise."""

    def __init__(self, deps: Deps, rp: RelyingParty) -> None:
        self._deps = deps
        self._rp = rp
        self._login = PasskeyLogin(deps, rp)

    # --- adding one ----------------------------------------------------------------------------------

    async def registration_options(
        self, user: User, password: str, client: Client, *, aal: int
    ) -> dict[str, object]:
        """PublicKeyCredentialCreationOptionsJSON for a new passkey of ``user``, after the step-up:
        a discoverable credential, user verification preferred, the account's passkeys excluded.
        ``aal`` (here and below) is the asking session's: an account with a second factor adds or
        removes one from level 2 only (Aal2Required)."""
        d = self._deps
        await require_assurance(d, user, aal)
        async with d.store.read() as tx:
            existing = await tx.passkeys.for_user(user.id)
        if len(existing) >= MAX_PASSKEYS:
            raise PasskeyLimit()
        attempts = (await reauthenticate(d, user, password, client, purpose="passkey_add")).attempts
        # The handle the authenticator keeps and gives back at every sign-in: the account's own if
        # it has passkeys, else a new one, stored with the challenge until the passkey is.
        handle = existing[0].user_handle if existing else secrets.token_bytes(USER_HANDLE_BYTES)
        challenge = new_challenge()
        now = d.clock()
        async with d.store.write() as tx:
            await tx.passkeys.add_challenge(
                WebauthnChallenge(
                    challenge_digest(challenge),
                    CeremonyPurpose.REGISTER,
                    now,
                    now + CHALLENGE_LIFETIME,
                    user_id=user.id,
                    user_handle=handle,
                )
            )
        if not user.mfa_enabled:  # no factor yet: the password is the whole proof, as at a login
            await d.throttle.login_succeeded(user.email_canonical, attempts)
        d.audit("passkey.registration_started", user_id=user.id, client=client.address)
        return self._rp.creation_options(
            challenge=challenge, user_handle=handle, user_name=user.email, exclude=existing
        )

    async def register(
        self, user: User, credential: CredentialJson, name: str | None, client: Client, *, aal: int
    ) -> PasskeyInfo:
        """Store the passkey a RegistrationResponseJSON describes, if it answers a registration
        challenge of this user that is unused and unexpired; the account then has a second factor."""
        d = self._deps
        await require_assurance(d, user, aal)  # a factor may have come since the options were given
        chosen = clean_name(name)
        try:
            parsed, challenge = self._rp.read_registration(credential)
        except CeremonyFailed as exc:
            self._refuse_registration(user, client, str(exc))
        digest = challenge_digest(challenge)
        async with d.store.read() as tx:
            stored = await tx.passkeys.challenge(digest)
        now = d.clock()
        if (
            stored is None
            or stored.purpose is not CeremonyPurpose.REGISTER
            or stored.user_id != user.id
            or stored.user_handle is None
            or stored.used_at is not None
            or now >= stored.expires_at
        ):
            self._refuse_registration(user, client, "challenge")
        try:
            registration = self._rp.verify_registration(parsed, challenge)
        except CeremonyFailed as exc:
            self._refuse_registration(user, client, str(exc))

        async with d.store.write() as tx:
            if not await tx.passkeys.take_challenge(digest, CeremonyPurpose.REGISTER, now, user_id=user.id):
                self._refuse_registration(user, client, "challenge_used")  # by a concurrent request
            existing = await tx.passkeys.for_user(user.id)
            if len(existing) >= MAX_PASSKEYS:
                raise PasskeyLimit()
            if existing and existing[0].user_handle != stored.user_handle:
                # The first passkeys of an account, registered at once from two sets of options:
                # one handle per account, so the later one starts again.
                self._refuse_registration(user, client, "user_handle_changed")
            passkey = Passkey(
                id=new_session_id(),
                user_id=user.id,
                credential_id=registration.credential_id,
                public_key=registration.public_key,
                sign_count=registration.sign_count,
                transports=registration.transports,
                aaguid=registration.aaguid,
                backup_eligible=registration.backup_eligible,
                backed_up=registration.backed_up,
                user_handle=stored.user_handle,
                name=chosen or f"Passkey {len(existing) + 1}",
                created_at=now,
            )
            if not await tx.passkeys.add(passkey):
                self._refuse_registration(user, client, "credential_registered")  # here or elsewhere
            await tx.factors.set_mfa_enabled(user.id, True, now)
        d.notifications.passkey_added(user.email, passkey.name, sighting(d, client))
        d.audit(
            "passkey.registered",
            user_id=user.id,
            passkey_id=passkey.id,
            aaguid=passkey.aaguid,
            backup_eligible=passkey.backup_eligible,
            client=client.address,
        )
        return _info(passkey)

    def _refuse_registration(self, user: User, client: Client, reason: str) -> NoReturn:
        self._deps.audit("passkey.register_failed", user_id=user.id, client=client.address, reason=reason)
        raise PasskeyInvalid()

    # --- the account's passkeys ------------------------------------------------------------------------

    async def rename(self, user: User, passkey_id: str, name: str) -> PasskeyInfo:
        """Give one of the user's passkeys a new name (required, at most 64 characters)."""
        chosen = clean_name(name)
        if chosen is None:
            raise InvalidRequest("A passkey's name is required")
        if not looks_like_session_id(passkey_id):
            raise PasskeyNotFound()
        async with self._deps.store.write() as tx:
            if not await tx.passkeys.rename(user.id, passkey_id, chosen):
                raise PasskeyNotFound()
            renamed = next(p for p in await tx.passkeys.for_user(user.id) if p.id == passkey_id)
        self._deps.audit("passkey.renamed", user_id=user.id, passkey_id=passkey_id)
        return _info(renamed)

    async def remove(self, user: User, passkey_id: str, password: str, client: Client, *, aal: int) -> None:
        """Remove one of the user's passkeys, after the step-up. Under DOORWARD_REQUIRE_MFA the
        account's last second factor stays (LastFactor). A passkey left, or the app, keeps the
        second step; without either the password alone signs in again."""
        d = self._deps
        if not looks_like_session_id(passkey_id):
            raise PasskeyNotFound()
        async with d.store.read() as tx:
            mine = await tx.passkeys.for_user(user.id)
            factor = await tx.factors.totp(user.id)
        passkey = next((p for p in mine if p.id == passkey_id), None)
        if passkey is None:
            raise PasskeyNotFound()
        await require_assurance(d, user, aal)
        others = len(mine) > 1 or (factor is not None and factor.confirmed_at is not None)
        if d.account_policy.require_mfa and not others:
            raise LastFactor()
        await reauthenticate(d, user, password, client, purpose="passkey_remove")
        async with d.store.write() as tx:
            # The account's row first, as turning the app off does: the two take turns, so the
            # check of the factor left sees the other's removal (else both go under the policy).
            await tx.users.by_id(user.id, for_update=True)
            if not await tx.passkeys.delete(user.id, passkey_id):
                raise PasskeyNotFound()  # removed by a concurrent request
            left = await has_factor(tx, user.id)
            if d.account_policy.require_mfa and not left:
                raise LastFactor()  # the other factor went meanwhile: this one stays (rolled back)
            await tx.factors.set_mfa_enabled(user.id, left, d.clock())
        d.notifications.passkey_removed(user.email, passkey.name, sighting(d, client))
        d.audit("passkey.removed", user_id=user.id, passkey_id=passkey_id, client=client.address)

    async def list(self, user: User) -> builtins.list[PasskeyInfo]:
        """The user's passkeys, oldest first."""
        async with self._deps.store.read() as tx:
            return [_info(p) for p in await tx.passkeys.for_user(user.id)]

    # --- signing in with one alone ----------------------------------------------------------------

    async def login_options(self) -> dict[str, object]:
        """PublicKeyCredentialRequestOptionsJSON for a sign-in with no account named: allowCredentials
        empty (the authenticator offers its discoverable credentials), user verification preferred.
        The challenge is stored with no user: the answer reveals nothing about any account."""
        return await self._login.options()

    async def login(self, credential: CredentialJson, client: Client) -> LoginResult:
        """A session for a passkey's assertion answering ``login_options``.

        An unknown credential, a bad signature, a used, expired or foreign challenge, a sign count
        gone backwards and a disabled account all end in InvalidCredentials (the seed's 401), each
        audited with its reason and counted against the client as a failed login. With user
        verification the passkey is both factors: assurance level 2. Without, it is one: an account
        with a second factor then gets MfaRequired (the app or a recovery code completes it), or
        UserVerificationRequired when it has no other; an account without one gets level 1.
        """
        return await self._login.login(credential, client)

    # --- as the second step ----------------------------------------------------------------------------

    async def second_step_options(self, mfa_token: str) -> dict[str, object]:
        """PublicKeyCredentialRequestOptionsJSON for the second step of the sign-in ``mfa_token``
        names: allowCredentials the account's passkeys, the challenge bound to that sign-in. The
        assertion goes to ``Mfa.complete_login(mfa_token, client, credential=...)``."""
        d = self._deps
        challenge_of_signin, user = await open_challenge(d, mfa_token)
        async with d.store.read() as tx:
            passkeys = await tx.passkeys.for_user(user.id)
        if not passkeys or challenge_of_signin.first_factor != PASSWORD_AMR:
            raise PasskeyNotFound()  # no passkey may complete this sign-in
        challenge = new_challenge()
        now = d.clock()
        async with d.store.write() as tx:
            await tx.passkeys.add_challenge(
                WebauthnChallenge(
                    challenge_digest(challenge),
                    CeremonyPurpose.SECOND_STEP,
                    now,
                    min(now + CHALLENGE_LIFETIME, challenge_of_signin.expires_at),
                    user_id=user.id,
                    mfa_digest=challenge_of_signin.digest,
                )
            )
        # The password was the first factor: a present user is enough, no PIN asked on top.
        return self._rp.request_options(
            challenge=challenge, allow=passkeys, user_verification=UserVerificationRequirement.DISCOURAGED
        )
