"""The admin API's answers (``/admin/*``), as /openapi.json documents them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from doorward.web.schemas import AAL_DESCRIPTION, AMR_DESCRIPTION

CURSOR = Field(description="Pass as ?cursor= for the next page; null on the last page")


class AdminUserOut(BaseModel):
    """An account in a list."""

    id: int
    email: str = Field(description="As registered")
    createdAt: datetime
    disabled: bool
    verified: bool = Field(description="The email address was confirmed")
    mfaEnabled: bool = Field(description="A second factor is on")


class AdminUserListOut(BaseModel):
    """A page of accounts whose canonical email starts with the query, oldest first."""

    success: Literal[True]
    users: list[AdminUserOut]
    nextCursor: str | None = CURSOR


class FactorsOut(BaseModel):
    """The account's second factors, counted: never a secret."""

    totp: bool = Field(description="An authenticator app is on")
    recoveryCodesLeft: int
    passkeys: int


class AdminAccountOut(AdminUserOut):
    """An account with its state."""

    locked: bool = Field(description="Password login is refused now: locked out, or a back-off wait")
    failedLogins: int = Field(description="Consecutive failed logins")
    lockedOut: bool = Field(description="The lockout count was reached: only an unlock or a reset lifts it")
    retryAt: datetime | None = Field(description="The end of a back-off wait in force now")
    factors: FactorsOut


class AdminSessionOut(BaseModel):
    """One live session of the account (never its token)."""

    id: str
    createdAt: datetime
    lastSeenAt: datetime
    expiresAt: datetime
    clientAddress: str | None
    userAgent: str | None
    device: str = Field(description='As the sessions list names it, e.g. "Firefox on Linux"')
    aal: Literal[1, 2] = Field(description=AAL_DESCRIPTION)
    amr: list[str] = Field(description=AMR_DESCRIPTION)


class AdminAccountDetailOut(BaseModel):
    """One account, its state and its live sessions (newest first)."""

    success: Literal[True]
    user: AdminAccountOut
    sessions: list[AdminSessionOut]


class AuditEventOut(BaseModel):
    """One audit event; never a password, a token, a key or an email."""

    id: int
    at: datetime
    event: str = Field(examples=["login.failed", "admin.api_call"])
    userId: int | None
    clientAddress: str | None
    detail: dict[str, object]


class AuditPageOut(BaseModel):
    """A page of audit events, newest first."""

    success: Literal[True]
    events: list[AuditEventOut]
    nextCursor: str | None = CURSOR


class ImportSkippedOut(BaseModel):
    """A refused line of an import and why."""

    line: int
    reason: str


class ImportOut(BaseModel):
    """What an import did."""

    success: Literal[True]
    imported: int
    skipped: list[ImportSkippedOut]


class ImportRefusedOut(BaseModel):
    """An import that refused lines, without skipInvalid: nothing was imported."""

    success: Literal[False]
    error: str
    code: Literal["import_refused"]
    skipped: list[ImportSkippedOut]
