"""What the use cases share: their policies and the dependencies they stand on, built once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from doorward.core.audit import Auditor
from doorward.core.background import Background
from doorward.core.clock import Clock, utc_now
from doorward.core.errors import Overloaded
from doorward.core.hashpool import HashPool, Slot
from doorward.core.outcomes import NoMetrics
from doorward.core.password_hashes import Verdict
from doorward.core.passwords import Password, PasswordPolicy
from doorward.core.ports import BreachedPasswords, Metrics, Notifications, Store
from doorward.core.throttle import Throttle

REFUSAL_SUMMARY_SECONDS = 1.0
"""Under a flood, refusals after the first are audited as one event per this many seconds."""


@dataclass
class Refusals:
    """Hash-pool refusals not audited yet, and whether an event summing them up is on its way."""

    unreported: int = 0
    summary_due: bool = False


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions live. ``idle_timeout`` None means sessions only expire absolutely."""

    lifetime: timedelta = timedelta(hours=24)
    idle_timeout: timedelta | None = None
    # last_seen is written at most this often, so a busy token does not write on every request.
    touch_interval: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class AccountPolicy:
    """The account lifecycle's settings."""

    require_email_verification: bool = False
    reset_token_lifetime: timedelta = timedelta(minutes=30)
    verification_token_lifetime: timedelta = timedelta(hours=24)
    require_mfa: bool = False  # accounts without a second factor may only enrol (issue 19)
    new_device_mail: bool = True  # mail a login from a device not seen on the account (core/notices.py)


@dataclass(frozen=True)
class Deps:
    """Storage, hashing, throttle, audit, mail, background work, clock, metrics, policies, breach checks.

    One instance is handed to Authenticator, Accounts and Admin, so they share one hash pool, one
    set of background tasks (drained once at shutdown) and one set of policies. Framework-free:
    storage and mail come in through ports.
    """

    store: Store
    pool: HashPool  # and its hasher
    password_policy: PasswordPolicy
    session_policy: SessionPolicy
    throttle: Throttle
    audit: Auditor
    notifications: Notifications
    account_policy: AccountPolicy = field(default_factory=AccountPolicy)
    background: Background = field(default_factory=Background)
    clock: Clock = utc_now
    breached: BreachedPasswords | None = None  # DOORWARD_BREACHED_PASSWORDS_URL; None: no check
    metrics: Metrics = field(default_factory=NoMetrics)  # the pool's own: the same object
    refusals: Refusals = field(init=False, default_factory=Refusals)  # state, not a dependency

    async def hash(self, password: Password) -> str:
        """``PasswordHasher.hash`` on the bounded pool; a full pool is an audited 503."""
        with self.hash_slot() as slot:
            return await slot.hash(password)

    async def verify(self, stored: str | None, password: Password) -> Verdict:
        """``PasswordHasher.verify`` on the bounded pool; a full pool is an audited 503."""
        with self.hash_slot() as slot:
            return await slot.verify(stored, password)

    async def for_import(self, stored: str) -> str:
        """``PasswordHasher.for_import`` on the bounded pool; a full pool is an audited 503."""
        with self.hash_slot() as slot:
            return await slot.for_import(stored)

    def hash_slot(self) -> Slot:
        """A slot on the bounded pool (``HashPool.slot``) for one hash; a full pool is an audited 503."""
        try:
            return self.pool.slot()
        except Overloaded:
            raise self._refused() from None

    def refuse_if_full(self) -> None:
        """The audited 503 of ``hash_slot``, now, if it would give one; nothing is taken otherwise."""
        if self.pool.full:
            raise self._refused()

    def _refused(self) -> Overloaded:
        """Audit a refusal: the first at once, those right after it summed up a second later.

        Under a flood, a log line and an audit row for every refusal would make the audit trail
        the flood's largest cost on the event loop, and tell an operator nothing more than a
        count does (the metrics count each one).
        """
        self.metrics.hash_refused()
        if self.refusals.summary_due:
            self.refusals.unreported += 1
        else:
            self.audit("overload.rejected", pending=self.pool.pending, refused=1)
            self.refusals.summary_due = True
            self.background.spawn(self._summarise_refusals(), "overload-summary")
        return Overloaded()

    async def _summarise_refusals(self) -> None:
        try:
            await asyncio.sleep(REFUSAL_SUMMARY_SECONDS)
        finally:  # also if cancelled (drain waits, a loop torn down does not): the count is not lost
            refused, self.refusals.unreported = self.refusals.unreported, 0
            self.refusals.summary_due = False
            if refused:
                self.audit("overload.rejected", pending=self.pool.pending, refused=refused)
