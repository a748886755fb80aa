"""Every failure doorward reports on purpose: one base class, a stable machine code on each (the
passkeys' own in passkey_errors.py)."""

from __future__ import annotations

from typing import ClassVar


class DoorwardError(Exception):
    """Base of every error doorward raises on purpose.

    ``code`` is stable and machine-readable; ``message`` is the default text a user may read.
    Neither ever contains a password, a token or a stack trace.
    """

    code: ClassVar[str] = "error"
    message: ClassVar[str] = "Request failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def text(self) -> str:
        """The human-readable text of this error."""
        return str(self.args[0])


class InvalidRequest(DoorwardError):
    """The request is malformed: bad JSON, a missing field, a wrong type, a forbidden character."""

    code = "invalid_request"
    message = "Invalid request"


class LoginRequestInvalid(InvalidRequest):
    """A login request without a usable email and password (the seed's 400 body, kept word for word)."""

    message = "Email and password required"


class EmailInvalid(InvalidRequest):
    """The email address is not one a mail could be delivered to."""

    code = "email_invalid"
    message = "Email address is not valid"


class PasswordRejected(InvalidRequest):
    """A new password does not meet the policy; subclasses say which rule refused it."""

    code = "password_rejected"
    message = "Password is not acceptable"


class PasswordTooShort(PasswordRejected):
    """Fewer code points than the configured minimum (15 by default, NIST SP 800-63B rev 4)."""

    code = "password_too_short"


class PasswordTooLong(PasswordRejected):
    """More code points than the hard maximum (1024): refused before any hashing."""

    code = "password_too_long"


class PasswordCommon(PasswordRejected):
    """The password is, or is a trivial variation of, a commonly used password."""

    code = "password_common"
    message = "This password is too common; choose one that is harder to guess"


class PasswordUnchanged(PasswordRejected):
    """A password change whose new password is the current one (compared after NFKC, as hashed)."""

    code = "password_unchanged"
    message = "The new password is the same as the current one"


class PasswordContext(PasswordRejected):
    """The password is built from words of this context: the service's name or the user's email."""

    code = "password_context"
    message = "The password must not contain your email address or the name of this service"


class InvalidCredentials(DoorwardError):
    """Unknown email, wrong password or disabled account: deliberately indistinguishable."""

    code = "invalid_credentials"
    message = "Invalid credentials"


class InvalidCurrentPassword(InvalidRequest):
    """A password change named a wrong current password (counted like a failed login)."""

    code = "invalid_current_password"
    message = "The current password is not correct"


class TokenInvalid(InvalidRequest):
    """A reset or verification token that is unknown or was already used."""

    code = "token_invalid"
    message = "This link is not valid (it may have been used already); request a new one"


class TokenExpired(InvalidRequest):
    """A reset or verification token past its lifetime."""

    code = "token_expired"
    message = "This link has expired; request a new one"


class EmailUnverified(DoorwardError):
    """The password was right, but the account's email address is not verified yet."""

    code = "email_unverified"
    message = "Email address not verified: follow the link we sent, or ask for a new one"


class SessionNotFound(DoorwardError):
    """No session of the current user has this id."""

    code = "session_not_found"
    message = "No such session"


class InvalidSession(DoorwardError):
    """The session token is missing, malformed, unknown, expired or revoked."""

    code = "invalid_session"
    message = "Invalid session"


class EmailTaken(DoorwardError):
    """An account with this (canonical) email already exists."""

    code = "email_taken"
    message = "An account with this email already exists"


class UserNotFound(DoorwardError):
    """An administrative command named an account that does not exist."""

    code = "user_not_found"
    message = "No account with this email"


class UnrecognisedHash(DoorwardError):
    """An imported password hash is in no format doorward can verify."""

    code = "hash_unrecognised"
    message = "Unrecognised password hash format"


class TooManyAttempts(DoorwardError):
    """The account or the client must wait before trying again; ``retry_after`` says how long (s).

    Raised before any password is checked, and by the same rule for unknown emails, so it says
    nothing about whether an account exists.
    """

    code = "rate_limited"
    message = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = max(1, retry_after)


class Overloaded(DoorwardError):
    """Every password-hashing slot is busy: the request is refused at once instead of queueing."""

    code = "overloaded"
    message = "Service overloaded, try again shortly"
    retry_after: ClassVar[int] = 1


class StorageUnavailable(DoorwardError):
    """A store (the database, or Redis) did not answer in time or refused the connection.

    ``store`` names which one, for the operator's log line; the client's text is the same for both.
    """

    code = "unavailable"
    message = "Service temporarily unavailable"
    retry_after: ClassVar[int] = 5

    def __init__(self, message: str | None = None, *, store: str = "database") -> None:
        super().__init__(message)
        self.store = store


# --- multi-factor login ----------------------------------------------------------------------------


class MfaRequired(DoorwardError):
    """The password was right, and the account has a second factor: no session yet.

    ``token`` (the mfaToken, 43 URL-safe characters) names the sign-in for ``Mfa.complete_login``;
    it is stored only as a digest. ``methods`` are the factors that may complete it.
    """

    code = "mfa_required"
    message = "Second factor required"

    def __init__(self, token: str, methods: tuple[str, ...]) -> None:
        super().__init__()
        self.token = token
        self.methods = methods


class MfaInvalid(DoorwardError):
    """A second-factor code at sign-in was wrong or was used already (counted by the throttle)."""

    code = "mfa_invalid"
    message = "Invalid code"


class MfaTokenInvalid(DoorwardError):
    """The mfaToken is unknown, used, expired, spent by too many wrong codes, or its account changed."""

    code = "mfa_token_invalid"
    message = "Sign-in expired, start again"


class CodeInvalid(InvalidRequest):
    """A code given to confirm or turn off two-step verification was wrong or used already."""

    code = "code_invalid"
    message = "Invalid code"


class TotpActive(DoorwardError):
    """Set-up asked for, but an authenticator app is already active on the account."""

    code = "totp_active"
    message = "Two-step verification is already on"


class TotpNotPending(DoorwardError):
    """A confirmation without a set-up started first."""

    code = "totp_not_pending"
    message = "Start the set-up first"


class MfaNotEnabled(DoorwardError):
    """Turning off, or new recovery codes, for an account without two-step verification."""

    code = "mfa_not_enabled"
    message = "Two-step verification is not on"


class MfaEnrollmentRequired(DoorwardError):
    """DOORWARD_REQUIRE_MFA is on and this account has no second factor yet: only enrolment is open."""

    code = "mfa_enrollment_required"
    message = "Set up two-step verification first"


class LastFactor(DoorwardError):
    """DOORWARD_REQUIRE_MFA is on and this is the account's last second factor: it stays."""

    code = "last_factor"
    message = "This is your last second factor: add another before removing it"


class Aal2Required(DoorwardError):
    """The account has a second factor and this session did not prove one (assurance level 1): adding,
    removing or renewing a factor then takes a session signed in with it, so that a password alone
    never buys a factor that signs in at level 2."""

    code = "aal2_required"
    message = "Sign in with your second factor first"
