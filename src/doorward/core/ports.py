"""Every Protocol the core needs from outside: the outer layers implement them, tests fake them.

Over 300 lines on purpose: one place to read all that the core asks of storage, mail, hashing and the
audit trail, each method's docstring being the contract an implementation keeps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Literal, Protocol

from doorward.core.admin_records import AuditEntry
from doorward.core.models import (
    AccountToken,
    AdminKey,
    AttemptState,
    AuditEvent,
    CeremonyPurpose,
    DeviceNote,
    LoginLimits,
    MfaChallenge,
    NewUser,
    Opened,
    Opening,
    Passkey,
    Recognition,
    RecoveryCode,
    Reservation,
    Session,
    Sighting,
    TokenPurpose,
    TotpFactor,
    User,
    WebauthnChallenge,
)
from doorward.core.password_hashes import HashOp, PasswordHasher

# --- storage: accounts, sessions, mailed tokens, factors -----------------------------------------


class Users(Protocol):
    """Accounts."""

    async def by_canonical_email(self, email_canonical: str) -> User | None:
        """The account with this canonical email, if any."""

    async def by_id(self, user_id: int, *, for_update: bool = False) -> User | None:
        """The account with this id, if any; ``for_update``: its row locked until the transaction
        ends, and read as committed once a concurrent writer's lock is released (PostgreSQL)."""

    async def add(self, new: NewUser, now: datetime) -> User:
        """Create an account; raise EmailTaken if the canonical email exists."""

    async def add_many(self, rows: Sequence[NewUser], now: datetime) -> int:
        """Create several accounts; raise EmailTaken (and add none) if any email exists."""

    async def replace_password_hash(self, user_id: int, old: str, new: str, now: datetime) -> bool:
        """Compare-and-set: replace the hash only if it is still ``old`` (no lost concurrent change)."""

    async def set_password_hash(self, user_id: int, new: str, now: datetime) -> None:
        """Replace the hash unconditionally (a change or a reset).

        This and ``replace_password_hash`` forget the breach check of the old password (both times)."""

    async def claim_breach_check(self, user_id: int, now: datetime, due_before: datetime) -> bool:
        """Record a breached-password check at ``now`` if none was recorded since ``due_before``
        (compare-and-set: one of concurrent logins makes the check); else False."""

    async def undo_breach_check(self, user_id: int, claimed_at: datetime, before: datetime | None) -> None:
        """Put back ``before`` if the recorded check is still the one claimed at ``claimed_at`` (the
        range service did not answer: the next login tries again)."""

    async def mark_compromised(self, user_id: int, seen_hash: str, now: datetime) -> bool:
        """Record that a breach lists the password, if the hash is still ``seen_hash`` and it was not
        recorded yet; True only then (the mail is sent once)."""

    async def set_disabled(self, user_id: int, disabled: bool, now: datetime) -> None:
        """Disable or re-enable an account."""

    async def set_email(self, user_id: int, email: str, email_canonical: str, now: datetime) -> None:
        """Give the account a new address, verified ``now`` (its mailed link was followed); EmailTaken
        if another account has the canonical form (the unique index decides, inside the transaction)."""

    async def mark_verified(self, user_id: int, now: datetime) -> None:
        """Record that the account's email address was confirmed."""

    async def search(self, prefix: str, after_id: int | None, limit: int) -> list[User]:
        """Up to ``limit`` accounts whose canonical email starts with ``prefix`` (taken literally:
        ``%`` and ``_`` are no wildcards), with ids above ``after_id``, in the order of their ids."""

    async def delete(self, user_id: int) -> bool:
        """Remove the account's row (its dependent rows first: see core/deletion.py); False if none."""


class Sessions(Protocol):
    """Sessions, found by the digest of their token."""

    async def add(self, session: Session, token_digest: bytes) -> None:
        """Store a new session under its token's digest."""

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        """The session with this token digest and its user, in one lookup."""

    async def touch(self, session_id: str, now: datetime) -> None:
        """Record that the session was used at ``now``, unless a later use is recorded already."""

    async def delete(self, token_digest: bytes) -> bool:
        """End the session with this token digest; False if there was none."""

    async def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        """End every session of a user (but ``keep``, if given); return how many ended."""

    async def list_for_user(self, user_id: int) -> list[Session]:
        """Every stored session of a user, newest first (expired ones included: the core filters)."""

    async def delete_by_id(self, user_id: int, session_id: str) -> bool:
        """End one session of this user; False if the user has no session with this id."""

    async def exists(self, session_id: str) -> bool:
        """Whether the session is still there (not ended meanwhile)."""

    async def delete_expired(self, now: datetime, idle_before: datetime | None) -> int:
        """Remove sessions past their expiry (or, with ``idle_before``, unused since before it)."""


class Tokens(Protocol):
    """Mailed single-use tokens (password reset, email verification), by digest."""

    async def add(self, token: AccountToken) -> None:
        """Store a new token."""

    async def find(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        """The token with this digest and purpose, left in place."""

    async def take(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        """Remove and return the token with this digest and purpose (single use)."""

    async def delete_for_user(self, user_id: int, purpose: TokenPurpose) -> int:
        """Remove every token of a user for this purpose (a new one replaces them)."""

    async def delete_expired(self, now: datetime) -> int:
        """Remove tokens past their expiry."""


class Factors(Protocol):
    """Second factors: a TOTP secret per user (encrypted), recovery codes (hashed) and the sign-ins
    waiting for their second factor (mfaToken digests). Every "use" is a compare-and-set, so a code
    or a token is accepted once even when two requests race."""

    async def totp(self, user_id: int) -> TotpFactor | None:
        """The user's TOTP factor, pending or confirmed, if any."""

    async def save_pending_totp(self, user_id: int, secret: bytes, now: datetime) -> bool:
        """Store a pending secret, replacing a pending one; False (nothing written) if one is confirmed."""

    async def confirm_totp(self, user_id: int, secret: bytes, step: int, now: datetime) -> bool:
        """Activate the pending factor if its secret is still ``secret``; ``step`` counts as used."""

    async def use_totp_step(self, user_id: int, step: int) -> bool:
        """Record ``step`` as used if the confirmed factor's last used step is earlier; else False."""

    async def replace_totp_secret(self, user_id: int, old: bytes, new: bytes) -> bool:
        """Replace the secret (re-encrypted under the newest key) if it is still ``old``."""

    async def delete_totp(self, user_id: int) -> bool:
        """Remove the user's factor, pending or confirmed; False if there was none."""

    async def set_mfa_enabled(self, user_id: int, enabled: bool, now: datetime) -> None:
        """Set the flag on the user row that tells login a second factor is needed."""

    async def recovery_codes(self, user_id: int) -> list[RecoveryCode]:
        """The user's unused recovery codes."""

    async def replace_recovery_codes(self, user_id: int, code_hashes: Sequence[str], now: datetime) -> None:
        """Remove every recovery code of the user and store these instead."""

    async def use_recovery_code(self, code_id: int, now: datetime) -> bool:
        """Mark the code used if it is not yet; else False."""

    async def delete_recovery_codes(self, user_id: int) -> int:
        """Remove every recovery code of the user; return how many went."""

    async def add_challenge(self, challenge: MfaChallenge, seen_hash: str) -> bool:
        """Store a sign-in's challenge if the user's hash is still ``seen_hash`` and the account is
        enabled, ordered against a concurrent reset, change or disable (which delete challenges)."""

    async def challenge(self, digest: bytes) -> MfaChallenge | None:
        """The challenge with this digest, used or not, if any."""

    async def count_attempt(self, digest: bytes, now: datetime, max_attempts: int) -> bool:
        """Count one code tried against the challenge, atomically, if it is unused, unexpired and
        under ``max_attempts``; else False (and nothing counted)."""

    async def use_challenge(self, digest: bytes, now: datetime) -> bool:
        """Mark the challenge used if it is unused and unexpired; else False."""

    async def delete_challenges(self, user_id: int) -> int:
        """Remove every challenge of the user; return how many went."""

    async def delete_expired_challenges(self, now: datetime) -> int:
        """Remove challenges past their expiry, used or not."""


class Passkeys(Protocol):
    """WebAuthn credentials (public keys) and the challenges of their ceremonies (digests). A
    challenge is taken, and a use recorded, with a compare-and-set: each happens once under races."""

    async def add(self, passkey: Passkey) -> bool:
        """Store a new passkey; False (nothing stored) if its credential id is registered already."""

    async def for_user(self, user_id: int) -> list[Passkey]:
        """The user's passkeys, oldest first."""

    async def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        """The passkey with this credential id, of whichever account, if any."""

    async def rename(self, user_id: int, passkey_id: str, name: str) -> bool:
        """Rename one of the user's passkeys; False if the user has none with this id."""

    async def delete(self, user_id: int, passkey_id: str) -> bool:
        """Remove one of the user's passkeys; False if the user has none with this id."""

    async def delete_for_user(self, user_id: int) -> int:
        """Remove every passkey of the user; return how many went."""

    async def record_use(self, passkey_id: str, sign_count: int, backed_up: bool, now: datetime) -> bool:
        """Record a verified use: the new count, the backup state, the time. Only if the stored count
        is lower than ``sign_count``, or both are 0 (an authenticator that counts nothing); else False."""

    async def add_challenge(self, challenge: WebauthnChallenge) -> None:
        """Store a new challenge."""

    async def challenge(self, digest: bytes) -> WebauthnChallenge | None:
        """The challenge with this digest, used or not, if any."""

    async def take_challenge(
        self,
        digest: bytes,
        purpose: CeremonyPurpose,
        now: datetime,
        *,
        user_id: int | None = None,
        mfa_digest: bytes | None = None,
    ) -> bool:
        """Mark the challenge used if it is unused, unexpired, for ``purpose`` and bound to exactly
        ``user_id`` and ``mfa_digest`` (None: bound to none); else False."""

    async def delete_challenges(self, user_id: int) -> int:
        """Remove every challenge of the user; return how many went."""

    async def delete_expired_challenges(self, now: datetime) -> int:
        """Remove challenges past their expiry, used or not."""


class AdminKeys(Protocol):
    """The admin API's keys, found by the SHA-256 digest of the key; the key itself is never stored."""

    async def add(self, key: AdminKey, digest: bytes) -> None:
        """Store a new key; raise AdminKeyNameTaken if a key (revoked or not) has its name."""

    async def by_digest(self, digest: bytes) -> AdminKey | None:
        """The key with this digest, revoked or not, if any."""

    async def all(self) -> list[AdminKey]:
        """Every key, revoked ones included, oldest first."""

    async def revoke(self, name: str, now: datetime) -> AdminKey | None:
        """Mark the key named ``name`` revoked (once: a second revocation keeps the first time);
        return it, or None if no key has this name."""


class AuditTrail(Protocol):
    """The stored audit events, read back (they are written by the AuditSink, in batches)."""

    async def query(
        self,
        *,
        user_id: int | None,
        event: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[AuditEntry]:
        """Up to ``limit`` events, newest first by (at, id): of ``user_id``, named ``event``, at or
        after ``since`` and before ``until`` (each when given), and after ``before`` in that order."""

    async def delete_before(self, at: datetime) -> int:
        """Remove events older than ``at`` (the retention); return how many went."""


class KnownDevices(Protocol):
    """The devices an account logged in from: a digest of each (core/notices.py), and when last."""

    async def note(self, user_id: int, device: DeviceNote) -> Recognition:
        """Note that ``user_id`` logged in from ``device`` (written unless it was since
        ``device.noted_since``); say whether it was known (last seen at or after
        ``device.known_since``), new, or the account's first of all."""

    async def last_seen(self, user_id: int, digest: bytes) -> datetime | None:
        """When ``user_id`` last logged in from ``digest``, if it ever did (and was not forgotten)."""

    async def delete_for_user(self, user_id: int) -> int:
        """Forget every device of ``user_id``; return how many went."""

    async def delete_before(self, at: datetime) -> int:
        """Forget devices last seen before ``at`` (new again by then); return how many went."""


class Transaction(Protocol):
    """One database transaction: everything done through it commits together or not at all."""

    @property
    def users(self) -> Users:
        """The accounts, inside this transaction."""

    @property
    def sessions(self) -> Sessions:
        """The sessions, inside this transaction."""

    @property
    def tokens(self) -> Tokens:
        """The mailed tokens, inside this transaction."""

    @property
    def factors(self) -> Factors:
        """The second factors, inside this transaction."""

    @property
    def passkeys(self) -> Passkeys:
        """The passkeys and their ceremonies' challenges, inside this transaction."""

    @property
    def admin_keys(self) -> AdminKeys:
        """The admin API's keys, inside this transaction."""

    @property
    def known_devices(self) -> KnownDevices:
        """The devices each account logged in from, by digest, inside this transaction."""

    @property
    def audit(self) -> AuditTrail:
        """The stored audit events, inside this transaction."""


class Store(Protocol):
    """Opens transactions. ``write`` ones take the write lock up front (SQLite: BEGIN IMMEDIATE)."""

    async def find_session(self, token_digest: bytes) -> tuple[Session, User] | None:
        """What ``Sessions.find`` returns, outside any transaction: the read every check makes.

        A store may answer it by a faster path than ``read()`` (a SessionLookup) but must see
        every committed write at once: a revoked session is invalid everywhere, immediately.
        """

    async def open_session(
        self,
        session: Session,
        token_digest: bytes,
        seen_hash: str,
        new_hash: str | None = None,
        device: DeviceNote | None = None,
    ) -> Opened:
        """A login's write: add ``session`` if its user's hash is still ``seen_hash`` and the
        account is enabled, and replace the hash by ``new_hash`` when one is given; all or nothing.
        With ``device``, remember it in the same write (``KnownDevices.note``: written unless it was
        noted since ``device.noted_since``) and answer its Recognition.

        False (nothing written) when a reset, change or disable committed since the hash was read:
        a login in flight must not outlive it. One in progress is waited for, not overtaken.
        """

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """Reads; each statement may see its own snapshot (SQL: autocommit), so no read-modify-write."""

    def write(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that writes; it commits on normal exit and rolls back on an exception."""


class SessionLookup(Protocol):
    """A store's fast path for ``Store.find_session``: a session and its user, outside any transaction."""

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        """The session with this token digest and its user, as ``Sessions.find`` answers."""

    async def close(self) -> None:
        """Release what it holds (connections)."""


# --- throttle counters ------------------------------------------------------------------------

WaitUntil = Callable[[int], datetime | None]
"""From an account's new count of failures, when it may try next (None: no wait)."""


class ThrottleStore(Protocol):
    """Where throttle counters live, shared by every instance (the database, or Redis)."""

    async def login_state(
        self, key: str, counter: str | None, window_start: datetime
    ) -> tuple[AttemptState, int]:
        """The state of ``key`` (the zero state when there is none) and the events ``counter``
        counted in the window starting at ``window_start`` (0 without a counter), read at once."""

    async def reserve_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        limits: LoginLimits,
        email: str | None = None,
    ) -> Reservation:
        """Count one attempt before its verify, atomically and only if ``limits`` admit it: the
        account ``key`` not locked nor waiting, the window of ``counter`` under ``limits.client``.
        Admitted, the attempt counts as a failure of ``key`` (with its wait) and as an event of
        ``counter``; refused, nothing is counted. A burst on any number of instances gets no more.

        ``email``: a store on the users' database also reads the user of this canonical email in
        the same trip (``Reservation.read``); another leaves that to the caller."""

    async def release_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        *,
        reset: bool,
        reserved: int,
        opening: Opening | None = None,
    ) -> Opened | None:
        """Take a reserved attempt back from ``counter``'s window (if still that window) and, with
        ``reset``, forget ``key`` (a success); without, take back its one failure (a right password
        whose second factor is still to come), and its wait if the account still counts
        ``reserved`` (what the reservation made it: no attempt reserved since).

        ``opening`` (with ``reset``): a store on the users' database writes the session in the same
        trip and answers ``Store.open_session``'s answer (the attempt is taken back either way);
        another answers None, and the caller opens the session."""

    async def record_login_failure(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        wait_until: WaitUntil | None = None,
    ) -> int:
        """Add one failure to ``key`` and, with a ``counter``, count one event in its window (as
        ``hit``); when ``wait_until(new count)`` gives a time, make ``key`` wait until then unless
        it already waits longer. Each atomically; the two counts in one write, the wait in it or
        right after it (it depends on the count); return the new count."""

    async def clear(self, key: str) -> None:
        """Forget ``key`` (a success, an unlock, a password reset, a deleted account): its state and,
        where windows are rows (the database), its window; where they expire by themselves (Redis),
        the window is left to expire."""

    async def hit(self, key: str, window_start: datetime, window: timedelta) -> int:
        """Count one event in the fixed window starting at ``window_start``; return the window's count."""

    async def forget_windows(self, keys: Sequence[str]) -> dict[str, int]:
        """Delete every window of these counters; return what each of those that existed counted."""

    async def prune(self, windows_before: datetime, idle_before: datetime) -> int:
        """Forget windows that started before ``windows_before`` and accounts untouched since
        ``idle_before`` that are not locked out; return how many entries went (0 where entries expire
        by themselves)."""


# --- audit, mail, hashing -----------------------------------------------------------------------


class AuditSink(Protocol):
    """Somewhere audit events are kept; ``record`` must not block, it is called on the request path."""

    def record(self, event: AuditEvent) -> None:
        """Keep ``event``."""


class Notifications(Protocol):
    """Mails the core asks for; each call returns at once, and a failed send never reaches the client.

    ``seen``, where a method takes it: when it happened, from which address and device (the mail says so).
    """

    # ``to`` is always the address stored with the account; the core says what happened, the
    # adapter renders and sends it in the background (logging and retrying a failure).

    def password_reset(self, to: str, token: str) -> None:
        """A single-use link to set a new password."""

    def password_changed(self, to: str, seen: Sighting | None = None) -> None:
        """The password was changed (``seen``: when, from where): if it was not you, act now."""

    def password_reset_used(self, to: str, seen: Sighting) -> None:
        """A mailed reset link was used to set a new password, and every session ended."""

    def password_breached(self, to: str) -> None:
        """The password just used to log in appears in a known data breach: change it."""

    def verify_email(self, to: str, token: str) -> None:
        """A single-use link confirming the address of a new account."""

    def registration_attempt(self, to: str) -> None:
        """Someone tried to register with this address, which already has an account."""

    def totp_enabled(self, to: str, seen: Sighting | None = None) -> None:
        """Two-step verification with an authenticator app was turned on."""

    def totp_disabled(self, to: str, seen: Sighting | None = None) -> None:
        """Two-step verification was turned off."""

    def recovery_codes_regenerated(self, to: str, seen: Sighting | None = None) -> None:
        """A new set of recovery codes was made; the old ones no longer work."""

    def recovery_code_used(self, to: str, left: int, seen: Sighting | None = None) -> None:
        """A recovery code was used to log in; ``left`` unused ones remain."""

    def mfa_reset(self, to: str) -> None:
        """An administrator removed two-step verification and ended every session."""

    def passkey_added(self, to: str, name: str, seen: Sighting | None = None) -> None:
        """A passkey named ``name`` was added to the account."""

    def passkey_removed(self, to: str, name: str, seen: Sighting | None = None) -> None:
        """The passkey named ``name`` was removed from the account."""

    def passkey_cloned(self, to: str, name: str, seen: Sighting | None = None) -> None:
        """The passkey named ``name`` signed with a count that went backwards: it may have been
        copied. The login was refused."""

    def login_backoff(self, to: str, seen: Sighting, wait: timedelta) -> None:
        """Failed logins began to make the account wait (``wait`` after the last one): once per streak."""

    def account_locked(self, to: str, seen: Sighting) -> None:
        """Failed logins locked the account; a password reset lifts it. Once per streak."""

    def new_device(self, to: str, seen: Sighting) -> None:
        """A login from a device (user agent and network) not seen on the account for 90 days."""

    def email_change_confirm(self, to: str, token: str) -> None:
        """To the new address: a single-use link that makes it the account's address."""

    def email_change_notice(self, to: str, token: str) -> None:
        """To the current address: a change to another one was asked; a single-use "this wasn't me"
        link ends every session, keeps (or restores) this address and mails a reset link."""

    def account_deleted(self, to: str) -> None:
        """The account was deleted, with everything it held: the last mail it gets."""


class BreachedPasswords(Protocol):
    """A k-anonymity range service of breached passwords (doorward/breaches.py)."""

    async def occurrences(self, sha1_hex: str) -> int | None:
        """How often the password with this upper-case SHA-1 hex appears in breaches (0: never), or
        None when the service did not answer in time (fail open; the adapter logs and counts it).
        Only the first 5 characters may leave the process."""


class Runner(Protocol):
    """Where a HashPool's hashes run: threads of this process, or processes of their own."""

    def start(
        self, hasher: PasswordHasher, op: HashOp, args: tuple[object, ...], done: Callable[[], None]
    ) -> Awaitable[object]:
        """Begin ``hasher``'s method ``op`` on ``args`` and return its result to await; call ``done``
        once it has finished or will never run, whether or not anyone still awaits it. A caller
        that stops awaiting (cancelled: its client has gone) while the hash still waits for a
        thread or process gives it up: it never runs, and ``done`` is called at once."""
        ...

    async def reachable(self) -> bool:
        """Whether hashes can run now, checked without computing one (for a health check)."""
        ...

    def close(self) -> None:
        """Finish running hashes and stop."""
        ...


# --- metrics ------------------------------------------------------------------------------------

Action = Literal[
    "login_password",
    "login_passkey",
    "login_second_step",
    "registration",
    "reset_request",
    "reset",
    "verification",
    "breach_check",
]
"""The use cases whose outcomes are counted (``core/outcomes.py``, ``counted``), and the
breached-password check's failures (it fails open: an operator must see that it does)."""


class Metrics(Protocol):
    """Counts and timings an operator scrapes (doorward/metrics/; ``NoMetrics`` when off).

    Called on the request path: each call is cheap and never fails. Every label is a fixed word or
    an error class's ``code``, never anything a request sent, so the number of series is bounded.
    """

    def outcome(self, action: Action, outcome: str) -> None:
        """A use case ended: ``outcome`` is "success", or the code of the DoorwardError it raised."""

    def hash_slots(self, busy: int, queued: int) -> None:
        """The hash pool's slots now: hashing (at most its workers) and waiting beyond those."""

    def hash_refused(self) -> None:
        """A hash was refused at once, every slot being taken (the 503 of Overloaded)."""

    def hashed(self, op: HashOp, seconds: float) -> None:
        """A hash of kind ``op`` took ``seconds`` to compute (not counting its wait for a slot)."""
