"""The throttle's decisions, with an injected clock: waits, lockout, per-client limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from doorward.core.audit import Auditor
from doorward.core.errors import TooManyAttempts
from doorward.core.throttle import Throttle, ThrottlePolicy
from tests.conftest import FakeClock
from tests.fakes import MemoryAuditSink, MemoryThrottleStore

ACCOUNT = "ada@example.com"


@pytest.fixture
def sink() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture
def throttle(clock: FakeClock, sink: MemoryAuditSink) -> Throttle:
    policy = ThrottlePolicy(lockout_failures=20, client_failures=30, client_registrations=3)
    return Throttle(MemoryThrottleStore(), policy, clock, Auditor([sink], clock))


async def fail(throttle: Throttle, times: int, client: str | None = None) -> None:
    for _ in range(times):
        await throttle.admit_login(ACCOUNT, client)
        await throttle.login_failed(ACCOUNT, client)


def test_schedule_is_free_then_doubling_to_a_cap() -> None:
    policy = ThrottlePolicy()
    waits = [policy.delay_after(n).total_seconds() for n in range(1, 18)]
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    assert policy.delay_after(10_000) == timedelta(minutes=15)


async def test_four_failures_are_free_the_fifth_starts_the_wait(throttle: Throttle, clock: FakeClock) -> None:
    await fail(throttle, 5)
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.admit_login(ACCOUNT, None)
    assert caught.value.retry_after == 1
    clock.advance(seconds=1)
    await fail(throttle, 1)  # sixth failure: two seconds now
    clock.advance(seconds=1.5)
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.admit_login(ACCOUNT, None)
    assert caught.value.retry_after == 1  # rounded up, never 0
    clock.advance(seconds=0.5)
    await throttle.admit_login(ACCOUNT, None)


async def test_success_resets_the_count(throttle: Throttle, clock: FakeClock) -> None:
    await fail(throttle, 4)
    state = await throttle.admit_login(ACCOUNT, None)
    assert state.failures == 4
    await throttle.login_succeeded(ACCOUNT, state)
    await fail(throttle, 4)  # four free failures again
    await throttle.admit_login(ACCOUNT, None)


async def test_lockout_holds_until_unlocked(
    throttle: Throttle, clock: FakeClock, sink: MemoryAuditSink
) -> None:
    for _ in range(20):
        await fail(throttle, 1)
        clock.advance(minutes=16)  # always past the wait
    assert sink.names().count("throttle.locked") == 1
    clock.advance(days=30)
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.admit_login(ACCOUNT, None)
    assert caught.value.retry_after == 900
    await throttle.unlock(ACCOUNT)
    await throttle.admit_login(ACCOUNT, None)


async def test_rejections_are_audited(throttle: Throttle, sink: MemoryAuditSink) -> None:
    await fail(throttle, 5, client="192.0.2.7")
    with pytest.raises(TooManyAttempts):
        await throttle.admit_login(ACCOUNT, "192.0.2.7")
    rejected = [e for e in sink.events if e.event == "throttle.rejected"]
    assert [(e.client, e.detail) for e in rejected] == [
        ("192.0.2.7", {"scope": "account", "reason": "backoff"})
    ]


async def test_one_client_spraying_many_accounts_is_stopped(throttle: Throttle, clock: FakeClock) -> None:
    for n in range(30):
        await throttle.admit_login(f"user{n}@example.com", "192.0.2.9")
        await throttle.login_failed(f"user{n}@example.com", "192.0.2.9")
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.admit_login("fresh@example.com", "192.0.2.9")
    assert 0 < caught.value.retry_after <= 15 * 60
    await throttle.admit_login("fresh@example.com", "192.0.2.10")  # another client is not affected
    clock.advance(minutes=15)
    await throttle.admit_login("fresh@example.com", "192.0.2.9")  # a new window


async def test_registrations_per_client(throttle: Throttle) -> None:
    for _ in range(3):
        await throttle.admit_registration("192.0.2.1")
    with pytest.raises(TooManyAttempts):
        await throttle.admit_registration("192.0.2.1")
    await throttle.admit_registration("192.0.2.2")


async def test_passkey_ceremonies_are_limited_per_client_and_window(
    clock: FakeClock, sink: MemoryAuditSink
) -> None:
    policy = ThrottlePolicy(client_ceremonies=3)
    throttle = Throttle(MemoryThrottleStore(), policy, clock, Auditor([sink], clock))
    for _ in range(3):
        await throttle.admit_ceremony("192.0.2.1")
    with pytest.raises(TooManyAttempts):
        await throttle.admit_ceremony("192.0.2.1")
    await throttle.admit_ceremony("192.0.2.2")  # another client has its own count
    await throttle.admit_ceremony(None)  # an unknown client is not counted
    clock.advance(seconds=policy.client_window.total_seconds())
    await throttle.admit_ceremony("192.0.2.1")  # a new window
    assert [e.event for e in sink.events].count("throttle.rejected") == 1
