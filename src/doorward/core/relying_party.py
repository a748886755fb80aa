"""The relying party of passkeys: WebAuthn's ceremonies through py_webauthn, which does every CBOR,
COSE and signature step. This module says what to ask an authenticator for and what its answer
must match; what the answers open (sessions, factors) is for passkeys.py and second_step.py."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from doorward.core.deps import Deps
from doorward.core.models import Client, Passkey, User
from doorward.core.notices import sighting

RP_NAME = "doorward"
"""The name an authenticator shows beside the account's email."""

CHALLENGE_BYTES = 32  # WebAuthn asks for at least 16
CHALLENGE_LIFETIME = timedelta(minutes=5)
"""How long a ceremony's challenge waits for the authenticator's answer."""

CredentialJson = Mapping[str, object] | str
"""A credential as the browser's ``credential.toJSON()`` wrote it (WebAuthn Level 3), parsed or not."""


class CeremonyFailed(Exception):
    """An authenticator's answer failed a WebAuthn check, or could not be read at all.

    Not a DoorwardError: the use cases turn it into what their callers may see (a 401 that says
    nothing, a 400); the reason goes to the audit trail only.
    """


@dataclass(frozen=True)
class Registration:
    """What a verified registration tells of the new credential: everything a Passkey stores."""

    credential_id: bytes
    public_key: bytes = field(repr=False)
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    user_verified: bool


@dataclass(frozen=True)
class Assertion:
    """An authenticator's answer to a login or a second step, read but not verified yet: its
    challenge names the stored challenge to check it against, its credential id the passkey."""

    credential: AuthenticationCredential = field(repr=False)
    challenge: bytes = field(repr=False)
    credential_id: bytes
    user_handle: bytes | None


@dataclass(frozen=True)
class Verified:
    """A verified assertion: the authenticator's new count and flags."""

    sign_count: int
    user_verified: bool
    backup_eligible: bool
    backed_up: bool

    @property
    def method(self) -> str:
        """RFC 8176: a synced (backup-eligible) passkey is a software-secured key, others hardware ones."""
        return "swk" if self.backup_eligible else "hwk"


def new_challenge() -> bytes:
    """A fresh challenge from ``secrets``."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def challenge_digest(challenge: bytes) -> bytes:
    """What the database stores and looks a challenge up by: its SHA-256 (256 random bits need no salt)."""
    return hashlib.sha256(challenge).digest()


def sign_count_regressed(stored: int, presented: int) -> bool:
    """WebAuthn §7.2, step 22: once either count is not zero, a count that is not higher than the
    stored one means two authenticators hold the credential: it may have been cloned. An
    authenticator that counts nothing always says 0, and 0 after 0 is fine."""
    return (stored > 0 or presented > 0) and presented <= stored


def report_clone(deps: Deps, user: User, passkey: Passkey, presented: int, client: Client) -> None:
    """Audit a sign count that went backwards, and mail the user that the passkey may be a copy."""
    deps.audit(
        "passkey.sign_count_regressed",
        user_id=user.id,
        passkey_id=passkey.id,
        stored=passkey.sign_count,
        presented=presented,
        client=client.address,
    )
    deps.notifications.passkey_cloned(user.email, passkey.name, sighting(deps, client))


def _transports(names: Sequence[str]) -> list[AuthenticatorTransport]:
    known = {transport.value for transport in AuthenticatorTransport}
    return [AuthenticatorTransport(name) for name in names if name in known]


def _descriptors(passkeys: Sequence[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=p.credential_id, transports=_transports(p.transports) or None)
        for p in passkeys
    ]


def _as_json(credential: CredentialJson) -> dict[str, Any] | str:
    """The form py_webauthn's parsers take."""
    return credential if isinstance(credential, str) else dict(credential)


@dataclass(frozen=True)
class RelyingParty:
    """doorward as a WebAuthn relying party: its ID (a domain) and the origins its pages live on."""

    rp_id: str
    origins: tuple[str, ...]
    name: str = RP_NAME

    # --- what to ask for ---------------------------------------------------------------------------

    def creation_options(
        self, *, challenge: bytes, user_handle: bytes, user_name: str, exclude: Sequence[Passkey]
    ) -> dict[str, object]:
        """PublicKeyCredentialCreationOptionsJSON: a discoverable credential (resident key
        required), user verification preferred, no attestation, none of ``exclude`` again."""
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.name,
            user_name=user_name,
            user_id=user_handle,
            user_display_name=user_name,
            challenge=challenge,
            timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=_descriptors(exclude),
        )
        return dict(json.loads(options_to_json(options)))

    def request_options(
        self, *, challenge: bytes, allow: Sequence[Passkey], user_verification: UserVerificationRequirement
    ) -> dict[str, object]:
        """PublicKeyCredentialRequestOptionsJSON allowing ``allow`` (none: any discoverable credential)."""
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
            allow_credentials=_descriptors(allow),
            user_verification=user_verification,
        )
        return dict(json.loads(options_to_json(options)))

    # --- what an answer must match -------------------------------------------------------------------
    # The answers are untrusted bytes read by a third-party parser: whatever it raises is a refusal
    # (CeremonyFailed), never a 500.

    def read_registration(self, credential: CredentialJson) -> tuple[RegistrationCredential, bytes]:
        """The registration response and the challenge it answers (to look up), not verified yet."""
        try:
            parsed = parse_registration_credential_json(_as_json(credential))
            return parsed, self._challenge_of(parsed.response.client_data_json)
        except CeremonyFailed:
            raise
        except Exception as exc:
            raise CeremonyFailed(f"unreadable registration: {type(exc).__name__}") from exc

    def verify_registration(self, credential: RegistrationCredential, challenge: bytes) -> Registration:
        """Check a registration response against its stored ``challenge``: origin, RP ID hash, user
        presence, a supported key; raise CeremonyFailed if any fails."""
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=list(self.origins),
            )
        except Exception as exc:
            raise CeremonyFailed(_reason(exc)) from exc
        transports = credential.response.transports or []
        return Registration(
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            # The client's list: each name once (seventy would overflow the column).
            transports=tuple(dict.fromkeys(transport.value for transport in transports)),
            aaguid=verified.aaguid,
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
            user_verified=verified.user_verified,
        )

    def read_assertion(self, credential: CredentialJson) -> Assertion:
        """An authentication response and the challenge it answers, not verified yet."""
        try:
            parsed = parse_authentication_credential_json(_as_json(credential))
            challenge = self._challenge_of(parsed.response.client_data_json)
        except CeremonyFailed:
            raise
        except Exception as exc:
            raise CeremonyFailed(f"unreadable assertion: {type(exc).__name__}") from exc
        return Assertion(parsed, challenge, parsed.raw_id, parsed.response.user_handle)

    def verify_assertion(self, assertion: Assertion, passkey: Passkey) -> Verified:
        """Check an assertion with ``passkey``'s public key: origin, RP ID hash, user presence, the
        signature. The sign count is the caller's to judge (``sign_count_regressed``): only after
        the signature holds does a count going backwards say the passkey was copied."""
        try:
            verified = verify_authentication_response(
                credential=assertion.credential,
                expected_challenge=assertion.challenge,  # found by its digest: it is the stored one
                expected_rp_id=self.rp_id,
                expected_origin=list(self.origins),
                credential_public_key=passkey.public_key,
                credential_current_sign_count=0,  # py_webauthn's own check would come before the signature's
            )
        except Exception as exc:
            raise CeremonyFailed(_reason(exc)) from exc
        return Verified(
            sign_count=verified.new_sign_count,
            user_verified=verified.user_verified,
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
        )

    @staticmethod
    def _challenge_of(client_data_json: bytes) -> bytes:
        client_data = parse_client_data_json(client_data_json)
        if client_data.cross_origin:  # asked from a frame of another site: ours never are
            raise CeremonyFailed("cross-origin ceremony")
        return client_data.challenge


def _reason(exc: Exception) -> str:
    """What the audit trail says of a failed check: py_webauthn's message, shortened (it quotes the
    origin the browser sent, so the operator sees a misconfigured DOORWARD_WEBAUTHN_ORIGINS)."""
    return f"{type(exc).__name__}: {exc}"[:200]
