"""Throttling: exponential waits per account, fixed-window limits per client, shared by every instance.

A login reserves its attempt before its password is checked: one atomic step in the store counts
it as a failure of the account (with the wait that failure brings) and as an attempt of the client,
or refuses it (429 at once, without a hash, nothing counted). Guesses sent all at once therefore get
no more verifies than guesses sent one by one: the free failures per account, the client's limit
per client, across every worker and instance. A success takes its reservation back (and resets the
account, as before); an attempt that ends without a verdict (a store or the client gone) stays
counted: the throttle fails closed. Flows that check a password inside a session (a password change,
a step-up, the second factor) read the state first and count a failure after, as before.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from doorward.core.admin_records import ThrottleState
from doorward.core.audit import Auditor
from doorward.core.clock import Clock
from doorward.core.errors import TooManyAttempts
from doorward.core.models import AttemptState, LoginLimits, Opened, Opening, User
from doorward.core.ports import ThrottleStore


@dataclass(frozen=True)
class ThrottlePolicy:
    """The numbers. Defaults follow NIST SP 800-63B rev 4 §3.2.2 and ASVS 6.3."""

    free_failures: int = 5
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    lockout_failures: int = 50  # NIST: never more than 100 consecutive failures
    client_failures: int = 100  # failed logins per client address per window (password spraying)
    client_window: timedelta = timedelta(minutes=15)
    client_registrations: int = 20  # registrations per client address per window
    registration_window: timedelta = timedelta(hours=1)
    client_ceremonies: int = 300  # passkey sign-ins begun (each stores a challenge) per client per window
    client_mails: int = 10  # requests that send mail (reset, verification) per client address per window
    account_mails: int = 3  # mails of those kinds to one address per window: no mail bombing
    mail_window: timedelta = timedelta(hours=1)
    admin_requests: int = 600  # admin API calls per key per window: a runaway script, not a person
    admin_window: timedelta = timedelta(minutes=1)

    def delay_after(self, failures: int) -> timedelta:
        """The wait imposed after ``failures`` consecutive failures: none, then 1 s doubling to the cap."""
        if failures < self.free_failures:
            return timedelta(0)
        exponent = min(failures - self.free_failures, 32)  # 2**32 s is far past any cap
        delay: timedelta = self.base_delay * (2**exponent)
        return min(delay, self.max_delay)

    @functools.cached_property
    def delays(self) -> tuple[timedelta, ...]:
        """The waits after failures ``free_failures``, ``free_failures + 1``, ... up to the first
        at the cap: every wait after that is the last one (see ``LoginLimits``). Worked out once:
        every reservation sends them."""
        delays = [self.delay_after(self.free_failures)]
        while delays[-1] < self.max_delay and len(delays) < 64:
            delays.append(self.delay_after(self.free_failures + len(delays)))
        return tuple(delays)


@dataclass(frozen=True)
class Reserved:
    """An attempt counted before its verify: what taking it back needs."""

    key: str
    counter: str | None
    window_start: datetime
    failures: int  # the account's failures, this attempt included
    read: bool = False  # the store read the account's user in the same trip (``read_user``)
    user: User | None = None


CLIENT_COUNTERS = {
    "registrations": "registrations",
    "ceremonies": "passkey sign-ins",
    "mails": "mail requests",
}
"""The per-client counters besides failed logins, by their key's prefix: what each one counts."""


def _client_key(client: str | None) -> str | None:
    """The counter of a client's failed logins (none when the client is unknown)."""
    return f"login-failures:{client}" if client is not None else None


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


class Throttle:
    """The decisions; the store only keeps the numbers."""

    def __init__(self, store: ThrottleStore, policy: ThrottlePolicy, clock: Clock, audit: Auditor) -> None:
        self._store = store
        self.policy = policy
        self._clock = clock
        self._audit = audit

    def _window(self, size: timedelta, now: datetime) -> tuple[datetime, datetime]:
        epoch = datetime.fromtimestamp(0, now.tzinfo)
        start = epoch + size * ((now - epoch) // size)
        return start, start + size

    async def admit_login(self, account: str, client: str | None) -> AttemptState:
        """Raise TooManyAttempts if the client or the account must wait; else the account's state."""
        now = self._clock()
        start, end = self._window(self.policy.client_window, now)
        state, client_failures = await self._store.login_state(
            f"account:{account}", _client_key(client), start
        )
        refused = self._refusal(state, client_failures, client, now, end)
        if refused is not None:
            raise refused
        return state

    def _refusal(
        self,
        state: AttemptState,
        client_failures: int,
        client: str | None,
        now: datetime,
        window_end: datetime,
    ) -> TooManyAttempts | None:
        """Why an attempt must wait, audited, as the error to raise; None when nothing holds it back.
        The client's limit first (it says least about the account), then the lockout, then the back-off."""
        policy = self.policy
        if client_failures >= policy.client_failures:
            self._audit("throttle.rejected", scope="client", client=client)
            return TooManyAttempts(_seconds_until(window_end, now))
        if state.failures >= policy.lockout_failures:
            self._audit("throttle.rejected", scope="account", reason="locked", client=client)
            return TooManyAttempts(int(policy.max_delay.total_seconds()))
        if state.next_allowed_at is not None and now < state.next_allowed_at:
            self._audit("throttle.rejected", scope="account", reason="backoff", client=client)
            return TooManyAttempts(_seconds_until(state.next_allowed_at, now))
        return None

    async def reserve_login(self, account: str, client: str | None, *, read_user: bool = False) -> Reserved:
        """Count this attempt before its password is checked, or raise TooManyAttempts (nothing
        counted), the same for every email, so a 429 reveals nothing; and ``read_user``, its user."""
        now = self._clock()
        policy = self.policy
        start, end = self._window(policy.client_window, now)
        limits = LoginLimits(
            now=now,
            lockout=policy.lockout_failures,
            client=policy.client_failures,
            free=policy.free_failures,
            waits=tuple(now + delay for delay in policy.delays),
        )
        key, counter, email = f"account:{account}", _client_key(client), account if read_user else None
        found = await self._store.reserve_login(key, counter, start, policy.client_window, limits, email)
        if found.admitted:
            return Reserved(key, counter, start, found.state.failures, found.read, found.user)
        refused = self._refusal(found.state, found.counted if counter is not None else 0, client, now, end)
        if refused is not None:
            raise refused
        # Refused on a state a concurrent attempt changed since (its wait is over already): a back-off
        # of at least a second.
        self._audit("throttle.rejected", scope="account", reason="backoff", client=client)
        raise TooManyAttempts(_seconds_until(now, now))

    def reserved_failed(self, reserved: Reserved, client: str | None) -> None:
        """A reserved attempt failed: it is counted already; audit the lockout it may have reached."""
        if reserved.failures == self.policy.lockout_failures:
            self._audit("throttle.locked", client=client)

    async def reserved_succeeded(
        self, reserved: Reserved, *, reset: bool = True, opening: Opening | None = None
    ) -> Opened | None:
        """A reserved attempt's password was right: take the attempt back from the client and
        reset the account (``reset``), or only its one failure (a second factor is still to come);
        and write ``opening`` where the store can (whether it did; None: the caller opens it)."""
        r = reserved
        return await self._store.release_login(
            r.key, r.counter, r.window_start, reset=reset, reserved=r.failures, opening=opening
        )

    async def login_failed(self, account: str, client: str | None) -> int:
        """Count a failure against the account (and its wait) and against the client; return the
        account's consecutive failures, this one included (each count is returned once: atomic)."""
        now = self._clock()
        key = f"account:{account}"
        start, _ = self._window(self.policy.client_window, now)

        def wait_until(failures: int) -> datetime | None:
            delay = self.policy.delay_after(failures)
            return now + delay if delay else None

        failures = await self._store.record_login_failure(
            key, _client_key(client), start, self.policy.client_window, wait_until
        )
        if failures == self.policy.lockout_failures:
            self._audit("throttle.locked", client=client)
        return failures

    async def admit_client(self, client: str | None) -> None:
        """Raise TooManyAttempts if the client is over its failed logins: for a login that names no
        account (a passkey's), so only the client's limit applies."""
        if client is None:
            return
        now = self._clock()
        start, end = self._window(self.policy.client_window, now)
        _, client_failures = await self._store.login_state(f"client:{client}", _client_key(client), start)
        if client_failures >= self.policy.client_failures:
            self._audit("throttle.rejected", scope="client", client=client)
            raise TooManyAttempts(_seconds_until(end, now))

    async def client_failed(self, client: str | None) -> None:
        """Count a failed login that names no account against the client alone."""
        key = _client_key(client)
        if key is None:
            return
        start, _ = self._window(self.policy.client_window, self._clock())
        await self._store.hit(key, start, self.policy.client_window)

    async def login_succeeded(self, account: str, state: AttemptState) -> None:
        """A success resets the account's consecutive failures (a write only if there were any)."""
        if state.failures:
            await self._store.clear(f"account:{account}")

    async def prune(self, now: datetime) -> int:
        """Forget what can no longer matter: finished windows, and quiet accounts after 90 days."""
        longest = max(self.policy.client_window, self.policy.registration_window, self.policy.mail_window)
        return await self._store.prune(now - longest, now - timedelta(days=90))

    async def unlock(self, account: str) -> None:
        """Lift a lockout or a wait (admin unlock, password reset)."""
        await self._store.clear(f"account:{account}")

    async def account_state(self, account: str) -> ThrottleState:
        """The account's failed logins now: the count, the lockout, a back-off wait in force."""
        now = self._clock()
        state, _ = await self._store.login_state(f"account:{account}", None, now)
        waiting = state.next_allowed_at is not None and now < state.next_allowed_at
        return ThrottleState(
            failures=state.failures,
            locked=state.failures >= self.policy.lockout_failures,
            wait_until=state.next_allowed_at if waiting else None,
        )

    async def forget(self, account: str) -> None:
        """Remove every counter named after the account (a deleted one): its failures, its mails."""
        await self.unlock(account)
        await self._store.clear(f"account-mails:{account}")

    async def admit_registration(self, client: str | None) -> None:
        """Count a registration attempt against the client, or raise TooManyAttempts."""
        if client is None:
            return
        now = self._clock()
        start, end = self._window(self.policy.registration_window, now)
        count = await self._store.hit(f"registrations:{client}", start, self.policy.registration_window)
        if count > self.policy.client_registrations:
            self._audit("throttle.rejected", scope="registration", client=client)
            raise TooManyAttempts(_seconds_until(end, now))

    async def admit_ceremony(self, client: str | None) -> None:
        """Count a passkey sign-in begun (a challenge row written) against the client, or raise
        TooManyAttempts: a client cannot fill the table by asking for options in a loop."""
        if client is None:
            return
        now = self._clock()
        start, end = self._window(self.policy.client_window, now)
        if (
            await self._store.hit(f"ceremonies:{client}", start, self.policy.client_window)
            > self.policy.client_ceremonies
        ):
            self._audit("throttle.rejected", scope="ceremony", client=client)
            raise TooManyAttempts(_seconds_until(end, now))

    async def admit_mail(self, client: str | None) -> None:
        """Count a request that may send mail against the client, or raise TooManyAttempts."""
        if client is None:
            return
        now = self._clock()
        start, end = self._window(self.policy.mail_window, now)
        if (
            await self._store.hit(f"mails:{client}", start, self.policy.mail_window)
            > self.policy.client_mails
        ):
            self._audit("throttle.rejected", scope="mail", client=client)
            raise TooManyAttempts(_seconds_until(end, now))

    async def clear_client(self, client: str) -> dict[str, int]:
        """Forget every count of ``client`` (an address, as the socket or a trusted proxy gives it):
        failed logins, registrations, passkey sign-ins, mail requests. Return the counts forgotten
        by their names in ``CLIENT_COUNTERS`` (only those there were)."""
        keys = {_client_key(client) or "": "failed logins"}
        keys.update({f"{prefix}:{client}": name for prefix, name in CLIENT_COUNTERS.items()})
        forgotten = await self._store.forget_windows(list(keys))
        return {keys[key]: count for key, count in forgotten.items()}

    async def allow_account_mail(self, account: str) -> bool:
        """Whether one more mail may go to this address in this window (silently dropped if not)."""
        start, _ = self._window(self.policy.mail_window, self._clock())
        count = await self._store.hit(f"account-mails:{account}", start, self.policy.mail_window)
        return count <= self.policy.account_mails

    async def admit_admin(self, key_name: str) -> None:
        """Count one admin API call against its key, or raise TooManyAttempts: each key has a limit
        of its own, so one runaway script does not starve the others."""
        now = self._clock()
        start, end = self._window(self.policy.admin_window, now)
        if (
            await self._store.hit(f"admin-key:{key_name}", start, self.policy.admin_window)
            > self.policy.admin_requests
        ):
            self._audit("throttle.rejected", scope="admin_key", key=key_name)
            raise TooManyAttempts(_seconds_until(end, now))
