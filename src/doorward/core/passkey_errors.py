"""The passkeys' failures (WebAuthn registration and sign-in), on core/errors.py's base: a stable
machine code on each, a status in web/errors.py's table like every other."""

from __future__ import annotations

from doorward.core.errors import DoorwardError, InvalidRequest


class PasskeyInvalid(InvalidRequest):
    """A passkey's registration could not be verified: its challenge is not this user's, used or
    expired, or the authenticator's answer failed a WebAuthn check."""

    code = "passkey_invalid"
    message = "The passkey could not be verified; try again"


class PasskeyLimit(DoorwardError):
    """The account has as many passkeys as it may (20): remove one first."""

    code = "passkey_limit"
    message = "An account may have at most 20 passkeys; remove one first"


class PasskeyNotFound(DoorwardError):
    """No passkey of the current user has this id."""

    code = "passkey_not_found"
    message = "No such passkey"


class UserVerificationRequired(DoorwardError):
    """A passkey login without user verification (no PIN, no biometrics) for an account with no
    other second factor to add to it: one factor, where the account needs two."""

    code = "user_verification_required"
    message = "Use your passkey with its PIN or biometrics, or sign in with your password"
