"""Request and response bodies: strict types in, the documented contract out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictStr
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from doorward.core.passwords import MAX_RAW_PASSWORD_LENGTH


def _usable(text: str) -> str:
    # NUL and lone surrogates are valid JSON escapes but no valid email or password; refused here
    # so they never reach a hash function, a database or a log line.
    if "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        raise ValueError("text contains NUL or a lone surrogate")
    return text


Text = Annotated[StrictStr, AfterValidator(_usable)]

SESSION_TOKEN_SCHEME = "sessionToken"  # noqa: S105 - the scheme's name, not a token
SESSION_COOKIE_SCHEME = "sessionCookie"
SESSION_SECURITY: list[dict[str, list[str]]] = [{SESSION_TOKEN_SCHEME: []}, {SESSION_COOKIE_SCHEME: []}]
"""An operation's ``security`` in /openapi.json: a session, by bearer token or by the pages' cookie."""


class Credentials(BaseModel):
    """An email and a password: the body of ``POST /login`` and ``POST /register``.

    Unknown fields are ignored, never assigned (``"role": "admin"`` does nothing).
    """

    email: Annotated[Text, Field(min_length=1, max_length=320, examples=["ada@example.com"])]
    password: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=MAX_RAW_PASSWORD_LENGTH,
            examples=["correct horse battery staple"],
        ),
    ]


class PasswordChangeIn(BaseModel):
    """The current password proves it is you; the new one must meet the policy."""

    currentPassword: Annotated[Text, Field(min_length=1, max_length=MAX_RAW_PASSWORD_LENGTH)]
    newPassword: Annotated[Text, Field(min_length=1, max_length=MAX_RAW_PASSWORD_LENGTH)]


class EmailIn(BaseModel):
    """An email address (password reset, verification resend)."""

    email: Annotated[Text, Field(min_length=1, max_length=320)]


class TokenIn(BaseModel):
    """A token from a mailed link."""

    token: Annotated[Text, Field(min_length=1, max_length=200)]


class ResetConfirmIn(BaseModel):
    """A reset token and the new password."""

    token: Annotated[Text, Field(min_length=1, max_length=200)]
    newPassword: Annotated[Text, Field(min_length=1, max_length=MAX_RAW_PASSWORD_LENGTH)]


MAX_CODE_LENGTH = 64
"""A code as typed (six digits, or a recovery code ``xxxxx-xxxxx``), with room for spaces; longer is
no code, refused before any work."""

Code = Annotated[Text, Field(min_length=1, max_length=MAX_CODE_LENGTH)]


class PasswordIn(BaseModel):
    """The current password: the step-up every change of a second factor takes."""

    password: Annotated[Text, Field(min_length=1, max_length=MAX_RAW_PASSWORD_LENGTH)]


class CodeIn(BaseModel):
    """A six-digit code from the authenticator app."""

    code: Annotated[Code, Field(examples=["123456"])]


class TotpDisableIn(BaseModel):
    """The current password and a code: from the app, or one of the recovery codes."""

    password: Annotated[Text, Field(min_length=1, max_length=MAX_RAW_PASSWORD_LENGTH)]
    code: Annotated[Code, Field(examples=["123456", "7k3mq-x9p2d"])]


class UserOut(BaseModel):
    """An account as the API shows it."""

    id: int
    email: str = Field(description="The email as the user registered it")


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)  # the key is absent, not null: the schema must not promise a value


ENROLMENT_REQUIRED_FLAG = Field(
    default=None,
    description="Only present, and true, under DOORWARD_REQUIRE_MFA for an account without a second "
    "factor: every endpoint but /session, /mfa and its set-up, and logout answers 403 "
    "mfa_enrollment_required",
    json_schema_extra=_no_default,
)

COMPROMISED_FLAG = Field(
    default=None,
    description="Only present, and true, when DOORWARD_BREACHED_PASSWORDS_URL's range service lists the "
    "account's password (checked after a login, at most once a day): ask the user to change it first",
    json_schema_extra=_no_default,
)


class LoginOut(BaseModel):
    """A successful login (the seed's body)."""

    success: Literal[True]
    sessionToken: str = Field(description="Opaque; send as `Authorization: Bearer <token>`")
    user: UserOut
    mfaEnrollmentRequired: Literal[True] | SkipJsonSchema[None] = ENROLMENT_REQUIRED_FLAG
    passwordCompromised: Literal[True] | SkipJsonSchema[None] = COMPROMISED_FLAG


class RegisterOut(BaseModel):
    """A new account."""

    success: Literal[True]
    user: UserOut


class _SessionTimes(BaseModel):
    id: str
    createdAt: datetime
    lastSeenAt: datetime
    expiresAt: datetime


AAL_DESCRIPTION = (
    "Assurance level (NIST SP 800-63B): 1 a password (or a passkey without user verification), 2 a "
    "password and a second factor, or a passkey with user verification"
)
AMR_DESCRIPTION = (
    'How the user logged in (RFC 8176): ["pwd"], ["pwd","otp"] with a code, ["pwd","hwk"] (or "swk") '
    'with a passkey as the second step, ["hwk","user"] for a passkey with user verification alone'
)


class SessionOut(_SessionTimes):
    """A session's public facts (never its token)."""

    aal: Literal[1, 2] = Field(description=AAL_DESCRIPTION)
    amr: list[str] = Field(description=AMR_DESCRIPTION)


class SessionCheckOut(BaseModel):
    """A valid session and its user."""

    success: Literal[True]
    user: UserOut
    session: SessionOut
    mfaEnrollmentRequired: Literal[True] | SkipJsonSchema[None] = ENROLMENT_REQUIRED_FLAG
    passwordCompromised: Literal[True] | SkipJsonSchema[None] = COMPROMISED_FLAG


class SessionListItem(_SessionTimes):
    """One of the user's sessions, as the sessions list shows it."""

    clientAddress: str | None
    userAgent: str | None
    current: bool = Field(description="The session making this request")
    aal: Literal[1, 2] = Field(description=AAL_DESCRIPTION)
    amr: list[str] = Field(description=AMR_DESCRIPTION)


class SessionListOut(BaseModel):
    """The user's live sessions, newest first."""

    success: Literal[True]
    sessions: list[SessionListItem]


class EndedOut(BaseModel):
    """How many sessions ended."""

    success: Literal[True]
    ended: int


class VerificationRequiredOut(BaseModel):
    """Registration with email verification: a mail went out; nothing else is said."""

    success: Literal[True]
    verificationRequired: Literal[True]


class OkOut(BaseModel):
    """Done."""

    success: Literal[True]


class SeedErrorOut(BaseModel):
    """The seed's login error bodies: exactly these two fields."""

    success: Literal[False]
    error: str


class ErrorOut(BaseModel):
    """Every other error: human text plus a stable machine code."""

    success: Literal[False]
    error: str
    code: str = Field(description="Stable, machine-readable: e.g. password_too_short")


class ThrottledOut(BaseModel):
    """Too many attempts; the same for every email, known or not."""

    success: Literal[False]
    error: Literal["Too many attempts"]
    code: Literal["rate_limited"]
    retryAfter: int = Field(description="Seconds to wait; also sent as the Retry-After header")


class HealthOut(BaseModel):
    """Liveness and database reachability."""

    status: Literal["ok", "unavailable"]


class ReadyOut(BaseModel):
    """Readiness: each check by name (database, redis when configured, migrations), ok or failed."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "failed"]]
