"""Fixtures for the use cases over an in-memory store: one set of dependencies, three use-case objects."""

from __future__ import annotations

from datetime import timedelta

import pytest

from doorward.core.accounts import Accounts
from doorward.core.admin import Admin
from doorward.core.audit import Auditor
from doorward.core.deps import Deps, SessionPolicy
from doorward.core.hashpool import HashPool
from doorward.core.models import Client
from doorward.core.password_hashes import PasswordHasher, Verdict
from doorward.core.passwords import Password, PasswordPolicy
from doorward.core.profiles import TESTING
from doorward.core.relying_party import RelyingParty
from doorward.core.sessions import Authenticator
from doorward.core.throttle import Throttle, ThrottlePolicy
from tests.conftest import FakeClock
from tests.fakes import MemoryAuditSink, MemoryStore, MemoryThrottleStore, RecordingNotifications

CLIENT = Client(address="192.0.2.1", user_agent="pytest")
RP_ID = "doorward.example"
ORIGIN = "https://doorward.example"
RP = RelyingParty(RP_ID, (ORIGIN,))


class RecordingHasher(PasswordHasher):
    """The real hasher, remembering which stored hashes it was asked to verify."""

    def __init__(self) -> None:
        super().__init__(TESTING, b"k" * 32)
        self.verified: list[str | None] = []

    def verify(self, stored: str | None, password: Password) -> Verdict:
        self.verified.append(stored)
        return super().verify(stored, password)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def hasher() -> RecordingHasher:
    return RecordingHasher()


@pytest.fixture
def pool(hasher: RecordingHasher) -> HashPool:
    return HashPool(hasher, workers=1, queue=8)


@pytest.fixture
def deps(store: MemoryStore, hasher: RecordingHasher, pool: HashPool, clock: FakeClock) -> Deps:
    audit = Auditor([MemoryAuditSink()], clock)
    return Deps(
        store=store,
        pool=pool,
        password_policy=PasswordPolicy(),
        session_policy=SessionPolicy(lifetime=timedelta(hours=24), idle_timeout=timedelta(minutes=30)),
        throttle=Throttle(MemoryThrottleStore(), ThrottlePolicy(), clock, audit),
        audit=audit,
        notifications=RecordingNotifications(),
        clock=clock,
    )


@pytest.fixture
def auth(deps: Deps) -> Authenticator:
    return Authenticator(deps)


@pytest.fixture
def accounts(deps: Deps) -> Accounts:
    return Accounts(deps)


@pytest.fixture
def admin(deps: Deps, accounts: Accounts) -> Admin:
    return Admin(deps, accounts)
