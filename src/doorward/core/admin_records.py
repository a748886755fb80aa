"""What the administrator's queries answer: pages of accounts and audit events, one account's
detail, and the opaque cursors that carry a page's place (keyset pagination) to the next request."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime

from doorward.core.errors import InvalidRequest
from doorward.core.models import User

UserRef = int | str
"""An account named by its id (an int) or by its email (a str, in any case and form, as at login)."""

MAX_PAGE = 200
"""The most rows one page holds, whatever limit is asked for."""


class CursorInvalid(InvalidRequest):
    """A pagination cursor that this query did not hand out (or that was altered)."""

    code = "cursor_invalid"
    message = "Invalid cursor"


class AccountDisabled(InvalidRequest):
    """An administrative action that makes no sense for a disabled account (mailing a reset link)."""

    code = "account_disabled"
    message = "The account is disabled"


@dataclass(frozen=True)
class Actor:
    """Who performs an administrative action, for its audit event: ``via`` the command line ("cli")
    or the admin API ("api", with the ``key``'s name, never the key), from ``client`` (an address)."""

    via: str = "cli"
    key: str | None = None
    client: str | None = None

    def fields(self) -> dict[str, str]:
        """The audit event's fields (client apart: the Auditor takes it by name). None for the command
        line, whose events read as they always have; ``via`` and ``key`` for anything else."""
        if self.via == "cli" and self.key is None:
            return {}
        return {"via": self.via} if self.key is None else {"via": self.via, "key": self.key}


CLI = Actor()
"""The command line, the default actor."""


@dataclass(frozen=True)
class UserPage:
    """A page of accounts, oldest first; ``next_cursor`` fetches the next page (None: this is the last)."""

    users: list[User]
    next_cursor: str | None


@dataclass(frozen=True)
class ThrottleState:
    """An account's failed-login state: ``locked`` when the lockout count was reached (only an unlock
    or a password reset lifts it); ``wait_until`` a back-off wait in force now, if any."""

    failures: int = 0
    locked: bool = False
    wait_until: datetime | None = None


@dataclass(frozen=True)
class FactorSummary:
    """An account's second factors, counted: never a secret, a code or a key."""

    totp: bool  # an authenticator app is confirmed (a pending set-up does not count)
    recovery_codes_left: int
    passkeys: int


@dataclass(frozen=True)
class SessionInfo:
    """One live session as the user's own sessions list shows it (never its token)."""

    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_address: str | None
    user_agent: str | None
    device: str  # core/devices.describe_device: "Firefox on Linux"
    aal: int
    amr: tuple[str, ...]


@dataclass(frozen=True)
class AccountDetail:
    """One account, its state and its live sessions (newest first)."""

    user: User
    throttle: ThrottleState
    factors: FactorSummary
    sessions: list[SessionInfo]

    @property
    def verified(self) -> bool:
        return self.user.email_verified_at is not None

    @property
    def locked(self) -> bool:
        """Login is refused now for failures: the lockout, or a back-off wait still running."""
        return self.throttle.locked or self.throttle.wait_until is not None


@dataclass(frozen=True)
class AuditEntry:
    """One stored audit event; ``detail`` as recorded (never a password, a token or an email)."""

    id: int
    at: datetime
    event: str
    user_id: int | None
    client: str | None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditQuery:
    """The audit query's filters, all optional: the account (id or email), the event's exact name,
    ``since`` (inclusive) and ``until`` (exclusive); ``cursor`` from the previous page."""

    user: UserRef | None = None
    event: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class AuditPage:
    """A page of audit events, newest first; ``next_cursor`` fetches the next page (None: the last)."""

    events: list[AuditEntry]
    next_cursor: str | None


def page_size(limit: int) -> int:
    """``limit`` within 1..MAX_PAGE, or InvalidRequest."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    return limit


# --- cursors: opaque to callers, checked when read back ----------------------------------------------


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorInvalid() from None
    prefix, _, value = text.partition(":")
    if prefix != kind or not value:
        raise CursorInvalid()
    return value


def user_cursor(user_id: int) -> str:
    """The cursor of the page after the account ``user_id``."""
    return _encode(f"u:{user_id}")


def read_user_cursor(cursor: str) -> int:
    """The account id a ``user_cursor`` holds, or CursorInvalid."""
    value = _decode(cursor, "u")
    if not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) >= 2**31:
        raise CursorInvalid()  # ids are 32-bit on PostgreSQL: a larger one is none of ours
    return int(value)


def audit_cursor(entry: AuditEntry) -> str:
    """The cursor of the page after ``entry`` (newest first: (at, id) descending)."""
    return _encode(f"a:{entry.at.astimezone(UTC).isoformat()}|{entry.id}")


def read_audit_cursor(cursor: str) -> tuple[datetime, int]:
    """The (at, id) an ``audit_cursor`` holds, or CursorInvalid."""
    at_text, _, id_text = _decode(cursor, "a").partition("|")
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        raise CursorInvalid() from None
    if at.tzinfo is None or not id_text.isascii() or not id_text.isdigit() or len(id_text) > 18:
        raise CursorInvalid()
    if int(id_text) >= 2**31:
        raise CursorInvalid()  # ids are 32-bit on PostgreSQL
    try:
        return at.astimezone(UTC), int(id_text)
    except OverflowError:  # before year 1 or after 9999 in UTC
        raise CursorInvalid() from None
