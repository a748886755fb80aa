"""A software WebAuthn authenticator for tests: an EC P-256 key from ``cryptography``, authenticator
data assembled with ``struct``, the attestation object and COSE key encoded with ``cbor2`` ('none'
attestation), clientDataJSON as JSON. It answers the options doorward gives with the JSON a
browser's ``credential.toJSON()`` writes (WebAuthn Level 3), and can be told to lie: another
origin, no user verification, any sign count."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40  # authenticator data flags (WebAuthn §6.1)
NO_AAGUID = bytes(16)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftwareAuthenticator:
    """One discoverable credential, made by ``create`` and used by ``get``.

    ``counts``: whether it keeps a signature counter (a security key) or always says 0 (as synced
    passkeys do). ``synced``: backup-eligible and backed up, a passkey of a password manager.
    """

    def __init__(
        self,
        rp_id: str,
        origin: str,
        *,
        counts: bool = True,
        synced: bool = False,
        aaguid: bytes = NO_AAGUID,
        transports: tuple[str, ...] = ("internal", "hybrid"),
    ) -> None:
        self.rp_id = rp_id
        self.origin = origin
        self.counts = counts
        self.synced = synced
        self.aaguid = aaguid
        self.transports = transports
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0
        self.user_handle: bytes | None = None

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def cose_key(self) -> bytes:
        """The public key as a COSE_Key (RFC 9052): EC2, ES256, P-256."""
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )

    def _flags(self, *, up: bool, uv: bool) -> int:
        flags = (UP if up else 0) | (UV if uv else 0)
        return flags | (BE | BS if self.synced else 0)

    def _client_data(self, kind: str, challenge: str, origin: str | None, **extra: object) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin, "crossOrigin": False}
        return json.dumps({**data, **extra}).encode()

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        up: bool = True,
        uv: bool = True,
        challenge: str | None = None,
    ) -> dict[str, Any]:
        """RegistrationResponseJSON for PublicKeyCredentialCreationOptionsJSON ``options``."""
        self.user_handle = unb64url(options["user"]["id"])
        client_data = self._client_data("webauthn.create", challenge or options["challenge"], origin)
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        auth_data = (
            rp_hash
            + struct.pack(">BI", self._flags(up=up, uv=uv) | AT, self.sign_count)
            + self.aaguid
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self.cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": list(self.transports),
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        uv: bool = True,
        sign_count: int | None = None,
        user_handle: bytes | None = None,
        challenge: str | None = None,
        **client_data: object,
    ) -> dict[str, Any]:
        """AuthenticationResponseJSON for PublicKeyCredentialRequestOptionsJSON ``options``: the
        counter moves on by one (when it counts) unless ``sign_count`` says what to sign."""
        if sign_count is None:
            if self.counts:
                self.sign_count += 1
            sign_count = self.sign_count
        data = self._client_data("webauthn.get", challenge or options["challenge"], origin, **client_data)
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        auth_data = rp_hash + struct.pack(">BI", self._flags(up=True, uv=uv), sign_count)
        signature = self.key.sign(auth_data + hashlib.sha256(data).digest(), ec.ECDSA(hashes.SHA256()))
        handle = user_handle if user_handle is not None else self.user_handle
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(handle) if handle is not None else None,
            },
        }
