"""An in-memory Store for core tests: the same transactional promise, no database."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from doorward.core.admin_records import AuditEntry
from doorward.core.errors import EmailTaken
from doorward.core.models import (
    AccountToken,
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
from doorward.core.ports import WaitUntil

_NEW_PASSWORD: dict[str, None] = {"breach_checked_at": None, "password_compromised_at": None}


@dataclass
class _Data:
    users: dict[int, User] = field(default_factory=dict)
    sessions: dict[bytes, Session] = field(default_factory=dict)
    tokens: dict[bytes, AccountToken] = field(default_factory=dict)
    next_id: int = 1
    totp: dict[int, TotpFactor] = field(default_factory=dict)
    codes: dict[int, RecoveryCode] = field(default_factory=dict)
    challenges: dict[bytes, MfaChallenge] = field(default_factory=dict)
    next_code_id: int = 1
    passkeys: dict[str, Passkey] = field(default_factory=dict)
    ceremonies: dict[bytes, WebauthnChallenge] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)  # what the database's audit trail holds
    devices: dict[tuple[int, bytes], datetime] = field(default_factory=dict)  # known_devices


class MemoryUsers:
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def by_canonical_email(self, email_canonical: str) -> User | None:
        return next((u for u in self._data.users.values() if u.email_canonical == email_canonical), None)

    async def add(self, new: NewUser, now: datetime) -> User:
        if await self.by_canonical_email(new.email_canonical) is not None:
            raise EmailTaken()
        user = User(
            id=self._data.next_id,
            email=new.email,
            email_canonical=new.email_canonical,
            password_hash=new.password_hash,
            disabled=False,
            created_at=now,
            updated_at=now,
            email_verified_at=now if new.email_verified else None,
        )
        self._data.users[user.id] = user
        self._data.next_id += 1
        return user

    async def add_many(self, rows: Sequence[NewUser], now: datetime) -> int:
        for new in rows:
            await self.add(new, now)
        return len(rows)

    async def replace_password_hash(self, user_id: int, old: str, new: str, now: datetime) -> bool:
        user = self._data.users[user_id]
        if user.password_hash != old:
            return False
        self._data.users[user_id] = replace(user, password_hash=new, updated_at=now, **_NEW_PASSWORD)
        return True

    async def by_id(self, user_id: int, *, for_update: bool = False) -> User | None:
        return self._data.users.get(user_id)

    async def set_password_hash(self, user_id: int, new: str, now: datetime) -> None:
        self._data.users[user_id] = replace(
            self._data.users[user_id], password_hash=new, updated_at=now, **_NEW_PASSWORD
        )

    async def claim_breach_check(self, user_id: int, now: datetime, due_before: datetime) -> bool:
        user = self._data.users[user_id]
        if user.breach_checked_at is not None and user.breach_checked_at > due_before:
            return False
        self._data.users[user_id] = replace(user, breach_checked_at=now)
        return True

    async def undo_breach_check(self, user_id: int, claimed_at: datetime, before: datetime | None) -> None:
        user = self._data.users[user_id]
        if user.breach_checked_at == claimed_at:
            self._data.users[user_id] = replace(user, breach_checked_at=before)

    async def mark_compromised(self, user_id: int, seen_hash: str, now: datetime) -> bool:
        user = self._data.users[user_id]
        if user.password_hash != seen_hash or user.password_compromised_at is not None:
            return False
        self._data.users[user_id] = replace(user, password_compromised_at=now)
        return True

    async def mark_verified(self, user_id: int, now: datetime) -> None:
        self._data.users[user_id] = replace(self._data.users[user_id], email_verified_at=now)

    async def set_disabled(self, user_id: int, disabled: bool, now: datetime) -> None:
        self._data.users[user_id] = replace(self._data.users[user_id], disabled=disabled, updated_at=now)

    async def set_email(self, user_id: int, email: str, email_canonical: str, now: datetime) -> None:
        other = await self.by_canonical_email(email_canonical)
        if other is not None and other.id != user_id:
            raise EmailTaken()
        self._data.users[user_id] = replace(
            self._data.users[user_id], email=email, email_canonical=email_canonical, email_verified_at=now
        )

    async def search(self, prefix: str, after_id: int | None, limit: int) -> list[User]:
        found = sorted(
            (u for u in self._data.users.values() if u.email_canonical.startswith(prefix)), key=lambda u: u.id
        )
        return [u for u in found if after_id is None or u.id > after_id][:limit]

    async def delete(self, user_id: int) -> bool:
        return self._data.users.pop(user_id, None) is not None


class MemoryAuditTrail:
    def __init__(self, data: _Data) -> None:
        self._data = data

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
        found = [
            e
            for e in self._data.audit
            if (user_id is None or e.user_id == user_id)
            and (event is None or e.event == event)
            and (since is None or e.at >= since)
            and (until is None or e.at < until)
            and (before is None or (e.at, e.id) < before)
        ]
        return sorted(found, key=lambda e: (e.at, e.id), reverse=True)[:limit]

    async def delete_before(self, at: datetime) -> int:
        kept = [e for e in self._data.audit if e.at >= at]
        gone, self._data.audit = len(self._data.audit) - len(kept), kept
        return gone


class MemorySessions:
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def add(self, session: Session, token_digest: bytes) -> None:
        self._data.sessions[token_digest] = session

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        session = self._data.sessions.get(token_digest)
        return (session, self._data.users[session.user_id]) if session else None

    async def touch(self, session_id: str, now: datetime) -> None:
        for digest, session in self._data.sessions.items():
            if session.id == session_id and session.last_seen_at < now:
                self._data.sessions[digest] = replace(session, last_seen_at=now)

    async def delete(self, token_digest: bytes) -> bool:
        return self._data.sessions.pop(token_digest, None) is not None

    async def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        doomed = [d for d, s in self._data.sessions.items() if s.user_id == user_id and s.id != keep]
        for digest in doomed:
            del self._data.sessions[digest]
        return len(doomed)

    async def exists(self, session_id: str) -> bool:
        return any(s.id == session_id for s in self._data.sessions.values())

    async def delete_expired(self, now: datetime, idle_before: datetime | None) -> int:
        doomed = [
            d
            for d, s in self._data.sessions.items()
            if s.expires_at <= now or (idle_before is not None and s.last_seen_at <= idle_before)
        ]
        for digest in doomed:
            del self._data.sessions[digest]
        return len(doomed)

    async def list_for_user(self, user_id: int) -> list[Session]:
        mine = [s for s in self._data.sessions.values() if s.user_id == user_id]
        return sorted(mine, key=lambda s: s.created_at, reverse=True)

    async def delete_by_id(self, user_id: int, session_id: str) -> bool:
        for digest, session in list(self._data.sessions.items()):
            if session.id == session_id and session.user_id == user_id:
                del self._data.sessions[digest]
                return True
        return False


class MemoryTokens:
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def add(self, token: AccountToken) -> None:
        self._data.tokens[token.digest] = token

    async def find(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        token = self._data.tokens.get(digest)
        return token if token and token.purpose is purpose else None

    async def take(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        token = await self.find(digest, purpose)
        if token:
            del self._data.tokens[digest]
        return token

    async def delete_expired(self, now: datetime) -> int:
        doomed = [d for d, t in self._data.tokens.items() if t.expires_at <= now]
        for digest in doomed:
            del self._data.tokens[digest]
        return len(doomed)

    async def delete_for_user(self, user_id: int, purpose: TokenPurpose) -> int:
        doomed = [d for d, t in self._data.tokens.items() if t.user_id == user_id and t.purpose is purpose]
        for digest in doomed:
            del self._data.tokens[digest]
        return len(doomed)


class MemoryFactors:
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def totp(self, user_id: int) -> TotpFactor | None:
        return self._data.totp.get(user_id)

    async def save_pending_totp(self, user_id: int, secret: bytes, now: datetime) -> bool:
        factor = self._data.totp.get(user_id)
        if factor is not None and factor.confirmed_at is not None:
            return False
        self._data.totp[user_id] = TotpFactor(user_id, secret, None, 0, now)
        return True

    async def confirm_totp(self, user_id: int, secret: bytes, step: int, now: datetime) -> bool:
        factor = self._data.totp.get(user_id)
        if factor is None or factor.confirmed_at is not None or factor.secret != secret:
            return False
        self._data.totp[user_id] = replace(factor, confirmed_at=now, last_step=step)
        return True

    async def use_totp_step(self, user_id: int, step: int) -> bool:
        factor = self._data.totp.get(user_id)
        if factor is None or factor.confirmed_at is None or factor.last_step >= step:
            return False
        self._data.totp[user_id] = replace(factor, last_step=step)
        return True

    async def replace_totp_secret(self, user_id: int, old: bytes, new: bytes) -> bool:
        factor = self._data.totp.get(user_id)
        if factor is None or factor.secret != old:
            return False
        self._data.totp[user_id] = replace(factor, secret=new)
        return True

    async def delete_totp(self, user_id: int) -> bool:
        return self._data.totp.pop(user_id, None) is not None

    async def set_mfa_enabled(self, user_id: int, enabled: bool, now: datetime) -> None:
        user = self._data.users[user_id]
        self._data.users[user_id] = replace(user, mfa_enabled=enabled, updated_at=now)

    async def recovery_codes(self, user_id: int) -> list[RecoveryCode]:
        return [c for c in self._data.codes.values() if c.user_id == user_id and c.used_at is None]

    async def replace_recovery_codes(self, user_id: int, code_hashes: Sequence[str], now: datetime) -> None:
        await self.delete_recovery_codes(user_id)
        for code_hash in code_hashes:
            code_id = self._data.next_code_id
            self._data.codes[code_id] = RecoveryCode(code_id, user_id, code_hash, now)
            self._data.next_code_id += 1

    async def use_recovery_code(self, code_id: int, now: datetime) -> bool:
        code = self._data.codes.get(code_id)
        if code is None or code.used_at is not None:
            return False
        self._data.codes[code_id] = replace(code, used_at=now)
        return True

    async def delete_recovery_codes(self, user_id: int) -> int:
        doomed = [i for i, c in self._data.codes.items() if c.user_id == user_id]
        for code_id in doomed:
            del self._data.codes[code_id]
        return len(doomed)

    async def add_challenge(self, challenge: MfaChallenge, seen_hash: str) -> bool:
        user = self._data.users.get(challenge.user_id)
        if user is None or user.password_hash != seen_hash or user.disabled:
            return False
        self._data.challenges[challenge.digest] = challenge
        return True

    async def challenge(self, digest: bytes) -> MfaChallenge | None:
        return self._data.challenges.get(digest)

    def _open(self, digest: bytes, now: datetime) -> MfaChallenge | None:
        challenge = self._data.challenges.get(digest)
        if challenge is None or challenge.used_at is not None or now >= challenge.expires_at:
            return None
        return challenge

    async def count_attempt(self, digest: bytes, now: datetime, max_attempts: int) -> bool:
        challenge = self._open(digest, now)
        if challenge is None or challenge.attempts >= max_attempts:
            return False
        self._data.challenges[digest] = replace(challenge, attempts=challenge.attempts + 1)
        return True

    async def use_challenge(self, digest: bytes, now: datetime) -> bool:
        challenge = self._open(digest, now)
        if challenge is None:
            return False
        self._data.challenges[digest] = replace(challenge, used_at=now)
        return True

    async def delete_challenges(self, user_id: int) -> int:
        doomed = [d for d, c in self._data.challenges.items() if c.user_id == user_id]
        for digest in doomed:
            del self._data.challenges[digest]
        return len(doomed)

    async def delete_expired_challenges(self, now: datetime) -> int:
        doomed = [d for d, c in self._data.challenges.items() if c.expires_at <= now]
        for digest in doomed:
            del self._data.challenges[digest]
        return len(doomed)


class MemoryPasskeys:
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def add(self, passkey: Passkey) -> bool:
        if any(p.credential_id == passkey.credential_id for p in self._data.passkeys.values()):
            return False
        self._data.passkeys[passkey.id] = passkey
        return True

    async def for_user(self, user_id: int) -> list[Passkey]:
        mine = [p for p in self._data.passkeys.values() if p.user_id == user_id]
        return sorted(mine, key=lambda p: (p.created_at, p.id))

    async def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        return next((p for p in self._data.passkeys.values() if p.credential_id == credential_id), None)

    def _mine(self, user_id: int, passkey_id: str) -> Passkey | None:
        passkey = self._data.passkeys.get(passkey_id)
        return passkey if passkey is not None and passkey.user_id == user_id else None

    async def rename(self, user_id: int, passkey_id: str, name: str) -> bool:
        passkey = self._mine(user_id, passkey_id)
        if passkey is None:
            return False
        self._data.passkeys[passkey_id] = replace(passkey, name=name)
        return True

    async def delete(self, user_id: int, passkey_id: str) -> bool:
        return self._mine(user_id, passkey_id) is not None and bool(self._data.passkeys.pop(passkey_id))

    async def delete_for_user(self, user_id: int) -> int:
        doomed = [i for i, p in self._data.passkeys.items() if p.user_id == user_id]
        for passkey_id in doomed:
            del self._data.passkeys[passkey_id]
        return len(doomed)

    async def record_use(self, passkey_id: str, sign_count: int, backed_up: bool, now: datetime) -> bool:
        passkey = self._data.passkeys.get(passkey_id)
        if passkey is None or not (passkey.sign_count < sign_count or passkey.sign_count == sign_count == 0):
            return False
        self._data.passkeys[passkey_id] = replace(
            passkey, sign_count=sign_count, backed_up=backed_up, last_used_at=now
        )
        return True

    async def add_challenge(self, challenge: WebauthnChallenge) -> None:
        self._data.ceremonies[challenge.digest] = challenge

    async def challenge(self, digest: bytes) -> WebauthnChallenge | None:
        return self._data.ceremonies.get(digest)

    async def take_challenge(
        self,
        digest: bytes,
        purpose: CeremonyPurpose,
        now: datetime,
        *,
        user_id: int | None = None,
        mfa_digest: bytes | None = None,
    ) -> bool:
        challenge = self._data.ceremonies.get(digest)
        if (
            challenge is None
            or challenge.purpose is not purpose
            or challenge.used_at is not None
            or now >= challenge.expires_at
            or challenge.user_id != user_id
            or challenge.mfa_digest != mfa_digest
        ):
            return False
        self._data.ceremonies[digest] = replace(challenge, used_at=now)
        return True

    async def delete_challenges(self, user_id: int) -> int:
        doomed = [d for d, c in self._data.ceremonies.items() if c.user_id == user_id]
        for digest in doomed:
            del self._data.ceremonies[digest]
        return len(doomed)

    async def delete_expired_challenges(self, now: datetime) -> int:
        doomed = [d for d, c in self._data.ceremonies.items() if c.expires_at <= now]
        for digest in doomed:
            del self._data.ceremonies[digest]
        return len(doomed)


class MemoryKnownDevices:
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def note(self, user_id: int, device: DeviceNote) -> Recognition:
        first = not any(uid == user_id for uid, _ in self._data.devices)
        last = self._data.devices.get((user_id, device.digest))
        if last is None or last <= device.noted_since:
            self._data.devices[(user_id, device.digest)] = device.at
        if first:
            return Recognition.FIRST
        return Recognition.KNOWN if last is not None and last >= device.known_since else Recognition.NEW

    async def last_seen(self, user_id: int, digest: bytes) -> datetime | None:
        return self._data.devices.get((user_id, digest))

    async def delete_for_user(self, user_id: int) -> int:
        doomed = [key for key in self._data.devices if key[0] == user_id]
        for key in doomed:
            del self._data.devices[key]
        return len(doomed)

    async def delete_before(self, at: datetime) -> int:
        doomed = [key for key, seen in self._data.devices.items() if seen < at]
        for key in doomed:
            del self._data.devices[key]
        return len(doomed)


class MemoryTransaction:
    def __init__(self, data: _Data) -> None:
        self.users = MemoryUsers(data)
        self.sessions = MemorySessions(data)
        self.tokens = MemoryTokens(data)
        self.factors = MemoryFactors(data)
        self.passkeys = MemoryPasskeys(data)
        self.known_devices = MemoryKnownDevices(data)
        self.audit = MemoryAuditTrail(data)


class MemoryStore:
    """Writes work on a copy that replaces the data only when the block ends without an exception."""

    def __init__(self) -> None:
        self.data = _Data()
        self.writes = 0
        self.reads = 0
        self.before_next_write: Callable[[_Data], None] | None = None  # a concurrent writer, simulated

    async def find_session(self, token_digest: bytes) -> tuple[Session, User] | None:
        self.reads += 1
        return await MemorySessions(self.data).find(token_digest)

    async def open_session(
        self,
        session: Session,
        token_digest: bytes,
        seen_hash: str,
        new_hash: str | None = None,
        device: DeviceNote | None = None,
    ) -> Opened:
        async with self.write() as tx:
            user = self.data.users.get(session.user_id)
            if user is None or user.password_hash != seen_hash or user.disabled:
                return False
            if new_hash is not None:
                await tx.users.replace_password_hash(user.id, seen_hash, new_hash, session.created_at)
            await tx.sessions.add(session, token_digest)
            return True if device is None else await tx.known_devices.note(user.id, device)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[MemoryTransaction]:
        self.reads += 1
        yield MemoryTransaction(copy.deepcopy(self.data))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[MemoryTransaction]:
        if self.before_next_write is not None:
            meddle, self.before_next_write = self.before_next_write, None
            meddle(self.data)
        draft = copy.deepcopy(self.data)
        yield MemoryTransaction(draft)
        self.data = draft
        self.writes += 1


class MemoryThrottleStore:
    """Throttle counters in a dict: what one process would see of the shared store."""

    def __init__(self) -> None:
        self.states: dict[str, AttemptState] = {}
        self.windows: dict[tuple[str, datetime], int] = {}

    async def login_state(
        self, key: str, counter: str | None, window_start: datetime
    ) -> tuple[AttemptState, int]:
        count = self.windows.get((counter, window_start), 0) if counter is not None else 0
        return self.states.get(key, AttemptState()), count

    async def reserve_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        limits: LoginLimits,
        email: str | None = None,  # the users are elsewhere: the caller reads the user
    ) -> Reservation:
        state, counted = await self.login_state(key, counter, window_start)
        waiting = state.next_allowed_at is not None and state.next_allowed_at > limits.now
        if (counter is not None and counted >= limits.client) or state.failures >= limits.lockout or waiting:
            return Reservation(False, state, counted)
        failures = state.failures + 1
        state = AttemptState(failures, limits.wait_after(failures) or state.next_allowed_at)
        self.states[key] = state
        if counter is not None:
            counted = await self.hit(counter, window_start, window)
        return Reservation(True, state, counted)

    async def release_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        *,
        reset: bool,
        reserved: int,
        opening: Opening | None = None,  # the sessions are elsewhere: the caller writes it
    ) -> None:
        if reset:
            self.states.pop(key, None)
        elif key in self.states:
            state = self.states[key]
            until = None if state.failures == reserved else state.next_allowed_at
            self.states[key] = AttemptState(max(0, state.failures - 1), until)
        if self.windows.get((counter, window_start), 0) > 0:
            self.windows[counter, window_start] -= 1  # type: ignore[index]

    async def record_login_failure(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        wait_until: WaitUntil | None = None,
    ) -> int:
        state = self.states.get(key, AttemptState())
        state = replace(state, failures=state.failures + 1)
        until = wait_until(state.failures) if wait_until is not None else None
        if until is not None and (state.next_allowed_at is None or state.next_allowed_at < until):
            state = replace(state, next_allowed_at=until)
        self.states[key] = state
        if counter is not None:
            await self.hit(counter, window_start, window)
        return state.failures

    async def clear(self, key: str) -> None:
        self.states.pop(key, None)

    async def hit(self, key: str, window_start: datetime, window: timedelta) -> int:
        self.windows[key, window_start] = self.windows.get((key, window_start), 0) + 1
        return self.windows[key, window_start]

    async def forget_windows(self, keys: Sequence[str]) -> dict[str, int]:
        forgotten: dict[str, int] = {}
        for key, start in [k for k in self.windows if k[0] in keys]:
            forgotten[key] = forgotten.get(key, 0) + self.windows.pop((key, start))
        return forgotten

    async def prune(self, windows_before: datetime, idle_before: datetime) -> int:
        old = [k for k in self.windows if k[1] < windows_before]
        for key in old:
            del self.windows[key]
        return len(old)


class MemoryAuditSink:
    """Keeps every audit event, for tests to read."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [event.event for event in self.events]


class RecordingNotifications:
    """The core's mails, kept as (kind, to, token-or-None) for tests to read."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None]] = []

    def password_reset(self, to: str, token: str) -> None:
        self.sent.append(("password_reset", to, token))

    def password_changed(self, to: str, seen: Sighting | None = None) -> None:
        self.sent.append(("password_changed", to, None))

    def password_breached(self, to: str) -> None:
        self.sent.append(("password_breached", to, None))

    def password_reset_used(self, to: str, seen: Sighting) -> None:
        self.sent.append(("password_reset_used", to, None))

    def verify_email(self, to: str, token: str) -> None:
        self.sent.append(("verify_email", to, token))

    def registration_attempt(self, to: str) -> None:
        self.sent.append(("registration_attempt", to, None))

    def totp_enabled(self, to: str, seen: Sighting | None = None) -> None:
        self.sent.append(("totp_enabled", to, None))

    def totp_disabled(self, to: str, seen: Sighting | None = None) -> None:
        self.sent.append(("totp_disabled", to, None))

    def recovery_codes_regenerated(self, to: str, seen: Sighting | None = None) -> None:
        self.sent.append(("recovery_codes_regenerated", to, None))

    def recovery_code_used(self, to: str, left: int, seen: Sighting | None = None) -> None:
        self.sent.append(("recovery_code_used", to, str(left)))

    def mfa_reset(self, to: str) -> None:
        self.sent.append(("mfa_reset", to, None))

    def passkey_added(self, to: str, name: str, seen: Sighting | None = None) -> None:
        self.sent.append(("passkey_added", to, name))

    def passkey_removed(self, to: str, name: str, seen: Sighting | None = None) -> None:
        self.sent.append(("passkey_removed", to, name))

    def passkey_cloned(self, to: str, name: str, seen: Sighting | None = None) -> None:
        self.sent.append(("passkey_cloned", to, name))

    def email_change_confirm(self, to: str, token: str) -> None:
        self.sent.append(("email_change_confirm", to, token))

    def email_change_notice(self, to: str, token: str) -> None:
        self.sent.append(("email_change_notice", to, token))

    def account_deleted(self, to: str) -> None:
        self.sent.append(("account_deleted", to, None))

    def login_backoff(self, to: str, seen: Sighting, wait: timedelta) -> None:
        self.sent.append(("login_backoff", to, seen.device))

    def account_locked(self, to: str, seen: Sighting) -> None:
        self.sent.append(("account_locked", to, seen.device))

    def new_device(self, to: str, seen: Sighting) -> None:
        self.sent.append(("new_device", to, seen.device))
