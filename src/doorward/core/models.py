"""The records the core works with: plain, immutable dataclasses."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class User:
    """An account. ``email`` is as the user gave it; lookups use ``email_canonical``."""

    id: int
    email: str
    email_canonical: str
    password_hash: str = field(repr=False)
    disabled: bool
    created_at: datetime
    updated_at: datetime
    email_verified_at: datetime | None = None
    mfa_enabled: bool = False  # a second factor is active: a password alone opens no session
    breach_checked_at: datetime | None = None  # the last breached-password check at login
    password_compromised_at: datetime | None = None  # since when a breach lists the current password


@dataclass(frozen=True)
class Session:
    """A login. The token itself is never part of it: only its digest is stored."""

    id: str
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_address: str | None
    user_agent: str | None
    aal: int = 1  # NIST SP 800-63B assurance level: 1 a password, 2 a password and a second factor
    amr: tuple[str, ...] = ("pwd",)  # how the user authenticated (RFC 8176 values)


@dataclass(frozen=True)
class Client:
    """Who is asking: the address from the socket (or a trusted proxy) and the user agent."""

    address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Sighting:
    """What a mail about an event on the account tells of it: when, from which address, and the
    device as the sessions list names it (core/devices.py)."""

    at: datetime
    address: str | None
    device: str


class Recognition(enum.Enum):
    """Whether a login's device was seen on its account before (core/notices.py)."""

    FIRST = "first"  # the account's first remembered login: nothing to compare with
    KNOWN = "known"
    NEW = "new"


@dataclass(frozen=True)
class DeviceNote:
    """A login's device, to be remembered with its session in the same write (core/notices.py).

    ``digest`` names the device; ``seen`` is the login (when, from where: for the mail). Last seen
    after ``noted_since``: noted lately enough, nothing is written. From ``known_since`` on: known.
    """

    digest: bytes
    seen: Sighting
    known_since: datetime
    noted_since: datetime

    @property
    def at(self) -> datetime:
        return self.seen.at


@dataclass(frozen=True)
class LoginResult:
    """A successful login: the raw token goes to the client once and is never stored."""

    token: str = field(repr=False)
    user: User
    session: Session
    mfa_enrollment_required: bool = False  # DOORWARD_REQUIRE_MFA and no factor yet: enrolment only


@dataclass(frozen=True)
class NewUser:
    """A row to create: registration, ``users add`` and ``users import`` all produce these."""

    email: str
    email_canonical: str
    password_hash: str = field(repr=False)
    email_verified: bool = False


class TokenPurpose(enum.Enum):
    """What a mailed, single-use token lets its holder do."""

    RESET_PASSWORD = "reset"  # noqa: S105 - a purpose label, not a password
    VERIFY_EMAIL = "verify"
    EMAIL_CHANGE = "email_change"  # mailed to the new address; ``detail`` is that address
    EMAIL_REVERT = "email_revert"  # mailed to the old address ("this wasn't me"); ``detail`` is it


@dataclass(frozen=True)
class AccountToken:
    """A mailed token as stored: its digest, never the token itself."""

    digest: bytes
    user_id: int
    purpose: TokenPurpose
    created_at: datetime
    expires_at: datetime
    detail: str | None = None  # what the token is about beyond its user: an email change's address


@dataclass(frozen=True)
class AttemptState:
    """An account's consecutive failed logins (a success resets them) and when it may try next."""

    failures: int = 0
    next_allowed_at: datetime | None = None


@dataclass(frozen=True)
class LoginLimits:
    """What a reservation checks and sets, for one attempt at ``now``: the policy as values a store
    can apply in one atomic step (a conditional upsert, a script), so no decision waits on a read."""

    now: datetime
    lockout: int  # no attempt once the account counts this many failures
    client: int  # nor once the client's window counts this many attempts
    free: int  # failures without a wait
    waits: tuple[datetime, ...]  # the wait after failure ``free + i``: ``waits[min(i, len - 1)]``

    def wait_after(self, failures: int) -> datetime | None:
        """When the account may try next once it counts ``failures`` (None: at once)."""
        if failures < self.free or not self.waits:
            return None
        return self.waits[min(failures - self.free, len(self.waits) - 1)]


@dataclass(frozen=True)
class Reservation:
    """A store's answer to a reservation: admitted with the account's state after it (this attempt
    counted as a failure) and the client's count; or refused with both as found."""

    admitted: bool
    state: AttemptState
    counted: int
    # With an email to read (a store on the users' database reads it in the same trip): whether
    # it was read, and the user found.
    read: bool = False
    user: User | None = None


@dataclass(frozen=True)
class Opening:
    """A login's session write, handed to the throttle store that takes its reservation back, so
    that a store on the same database writes both at once (``Store.open_session``'s arguments)."""

    session: Session
    token_digest: bytes
    seen_hash: str
    new_hash: str | None = None
    device: DeviceNote | None = None  # remembered in the same write, which answers its Recognition


Opened = bool | Recognition
"""A login's write answered: False, nothing written (the credentials changed meanwhile); True, the
session written; with a ``DeviceNote``, its device's ``Recognition`` instead (a true value too)."""


@dataclass(frozen=True)
class AuditEvent:
    """What happened, when, to whom, from where."""

    at: datetime
    event: str
    user_id: int | None = None
    client: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TotpFactor:
    """An authenticator app's secret, as stored: encrypted (``SecretBox``), never in clear.

    Pending until ``confirmed_at`` is set by a first right code. ``last_step`` is the newest
    30-second step a code was accepted for: that code and every earlier one are refused.
    """

    user_id: int
    secret: bytes = field(repr=False)
    confirmed_at: datetime | None
    last_step: int
    created_at: datetime


@dataclass(frozen=True)
class RecoveryCode:
    """One single-use recovery code, as stored: an argon2id hash, never the code."""

    id: int
    user_id: int
    code_hash: str = field(repr=False)
    created_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True)
class MfaChallenge:
    """A sign-in between its password step and its second factor: the mfaToken's digest, never the token."""

    digest: bytes
    user_id: int
    created_at: datetime
    expires_at: datetime
    attempts: int = 0  # codes tried, each counted before it is checked
    used_at: datetime | None = None
    # RFC 8176: what the first step proved; "hwk"/"swk" for a passkey without user verification
    first_factor: str = "pwd"


@dataclass(frozen=True)
class Passkey:
    """A WebAuthn credential of an account, as stored: its public key and what the authenticator
    said of itself; nothing secret. ``id`` is the public name the API uses for it."""

    id: str
    user_id: int
    credential_id: bytes
    public_key: bytes = field(repr=False)  # COSE_Key, as the authenticator sent it
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str  # the authenticator's model, "00000000-0000-0000-0000-000000000000" when it says none
    backup_eligible: bool  # may be synced to other devices (a "synced passkey": amr "swk", not "hwk")
    backed_up: bool
    user_handle: bytes  # WebAuthn user.id: 32 random bytes, the same for every passkey of the account
    name: str
    created_at: datetime
    last_used_at: datetime | None = None


class CeremonyPurpose(enum.Enum):
    """What a WebAuthn challenge was made for: one ceremony's challenge never serves another."""

    REGISTER = "register"
    LOGIN = "login"
    SECOND_STEP = "second_step"


@dataclass(frozen=True)
class WebauthnChallenge:
    """A WebAuthn challenge as stored: its SHA-256 digest, never the challenge; single-use.

    A registration's names its user and the user handle its options gave the authenticator; a
    login's names nobody (the login reveals no account); a second step's names the mfaToken
    (by digest) it completes.
    """

    digest: bytes
    purpose: CeremonyPurpose
    created_at: datetime
    expires_at: datetime
    user_id: int | None = None
    mfa_digest: bytes | None = None
    user_handle: bytes | None = None
    used_at: datetime | None = None


class AdminScope(enum.Enum):
    """What an admin API key may do: read accounts and the audit trail, or change them too."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class AdminKey:
    """An admin API key as stored: its name and scope, never the key (only its digest is kept)."""

    name: str
    scope: AdminScope
    created_at: datetime
    revoked_at: datetime | None = None
