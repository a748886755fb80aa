"""Request and response bodies of the second factors: the authenticator app, recovery codes and
passkeys (kept apart from schemas.py, which holds the password and session bodies, to stay short)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from doorward.web.schemas import Code, Text

Credential = Annotated[
    dict[str, Any],
    Field(
        description="The browser's credential.toJSON() (WebAuthn Level 3): RegistrationResponseJSON "
        "or AuthenticationResponseJSON",
        examples=[{"id": "...", "rawId": "...", "type": "public-key", "response": {}}],
    ),
]


class MfaLoginIn(BaseModel):
    """A login's second step: the mfaToken of POST /login's 401, and one of ``code`` (from the app),
    ``recoveryCode`` or a passkey's ``credential`` (answering POST /login/mfa/options)."""

    mfaToken: Annotated[Text, Field(min_length=1, max_length=200)]
    code: Annotated[Code | None, Field(examples=["123456"])] = None
    recoveryCode: Annotated[Code | None, Field(examples=["7k3mq-x9p2d"])] = None
    credential: Credential | None = None


class MfaTokenIn(BaseModel):
    """The mfaToken of POST /login's 401."""

    mfaToken: Annotated[Text, Field(min_length=1, max_length=200)]


class CredentialIn(BaseModel):
    """A passkey's assertion: AuthenticationResponseJSON."""

    credential: Credential


MAX_NAME_INPUT = 256
"""A passkey's name as sent; the core allows 64 code points once trimmed and says so."""


class PasskeyIn(BaseModel):
    """A new passkey: the authenticator's RegistrationResponseJSON, and a name (optional, at most 64
    characters; "Passkey <n>" without one)."""

    credential: Credential
    name: Annotated[Text | None, Field(max_length=MAX_NAME_INPUT, examples=["Laptop"])] = None


class PasskeyRenameIn(BaseModel):
    """A passkey's new name: at most 64 characters."""

    name: Annotated[Text, Field(max_length=MAX_NAME_INPUT, examples=["Phone"])]


class MfaRequiredOut(BaseModel):
    """The right password of an account with two-step verification: no session yet."""

    success: Literal[False]
    error: Literal["Second factor required"]
    code: Literal["mfa_required"]
    mfaToken: str = Field(description="43 URL-safe characters; POST it to /login/mfa within 5 minutes")
    methods: list[Literal["totp", "recovery_code", "passkey"]] = Field(
        description='What may complete the login: "totp" and "recovery_code" with the app on, '
        '"passkey" when the account has one (after a password)'
    )


class TotpEnrolmentOut(BaseModel):
    """A pending secret: shown this once, not active until confirmed with a code."""

    success: Literal[True]
    secret: str = Field(description="Base32, 160 bits: for typing into the app")
    otpauthUri: str = Field(description="The same secret as a QR code carries it (otpauth://totp/...)")


class RecoveryCodesOut(BaseModel):
    """Ten single-use recovery codes, shown this once: only their hashes are kept."""

    success: Literal[True]
    recoveryCodes: list[str] = Field(examples=[["7k3mq-x9p2d"]])


class MfaStatusOut(BaseModel):
    """Whether the authenticator app is on, and how many recovery codes are unused."""

    success: Literal[True]
    totp: bool
    recoveryCodesLeft: int


class OptionsOut(BaseModel):
    """Options for the browser's navigator.credentials: PublicKeyCredentialCreationOptionsJSON or
    PublicKeyCredentialRequestOptionsJSON, for ``PublicKeyCredential.parse...OptionsFromJSON``."""

    success: Literal[True]
    options: dict[str, Any]


class NewPasskeyOut(BaseModel):
    """A passkey as it was just added."""

    id: str
    name: str
    createdAt: datetime
    lastUsedAt: datetime | None


class PasskeyOut(NewPasskeyOut):
    """One of the account's passkeys (never its key or credential id)."""

    backedUp: bool = Field(description="Synced by its provider (a password manager's passkey)")


class PasskeyAddedOut(BaseModel):
    """The new passkey; a mail tells the user."""

    success: Literal[True]
    passkey: NewPasskeyOut


class PasskeyRenamedOut(BaseModel):
    """The passkey under its new name."""

    success: Literal[True]
    passkey: PasskeyOut


class PasskeyListOut(BaseModel):
    """The account's passkeys, oldest first."""

    success: Literal[True]
    passkeys: list[PasskeyOut]
