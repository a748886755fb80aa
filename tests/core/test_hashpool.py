"""The hash pool: bounded, off the event loop, refusing at once when full."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from doorward.core.errors import Overloaded
from doorward.core.hashpool import HashPool
from doorward.core.password_hashes import PasswordHasher, Verdict
from doorward.core.passwords import Password
from doorward.core.priority import HASH_NICENESS
from doorward.core.profiles import TESTING

SECRET = Password("correct horse battery staple")


class GatedHasher(PasswordHasher):
    """A real hasher whose verifies say they ``started``, wait for ``gate``, and note the thread
    and niceness they ran at."""

    def __init__(self) -> None:
        super().__init__(TESTING, b"k" * 32)
        self.started = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.threads: list[str] = []
        self.niceness: list[int] = []

    def verify(self, stored: str | None, password: Password) -> Verdict:
        self.threads.append(threading.current_thread().name)
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, 0))
        self.started.set()
        if not self.gate.wait(5):
            raise TimeoutError("the test never opened the gate")
        return super().verify(stored, password)


@pytest.fixture
def hasher() -> GatedHasher:
    return GatedHasher()


async def running(hasher: GatedHasher) -> None:
    """Until a verify has begun on its thread (no longer waiting in the queue)."""
    assert await asyncio.to_thread(hasher.started.wait, 5), "no verify began"


async def settle(pool: HashPool, pending: int) -> None:
    for _ in range(200):
        if pool.pending == pending:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{pool.pending} hashes pending, not {pending}")


async def test_runs_the_hashers_methods_off_the_event_loop(hasher: GatedHasher) -> None:
    pool = HashPool(hasher, workers=1, queue=0)
    try:
        stored = await pool.hash(SECRET)
        assert hasher.verify(stored, SECRET).ok  # a real hash of the password
        assert (await pool.verify(stored, SECRET)).ok
        assert hasher.threads[-1].startswith("doorward-hash")
        assert (await pool.for_import("a" * 64)).startswith("$doorward-sha256-hmac$")
    finally:
        pool.close()


async def test_refuses_at_once_beyond_workers_plus_queue(hasher: GatedHasher) -> None:
    pool = HashPool(hasher, workers=1, queue=1)
    hasher.gate.clear()
    try:
        running = [asyncio.ensure_future(pool.verify(None, SECRET)) for _ in range(2)]
        await settle(pool, 2)
        with pytest.raises(Overloaded):
            await pool.hash(SECRET)
        hasher.gate.set()
        assert [v.ok for v in await asyncio.gather(*running)] == [False, False]
        assert pool.pending == 0
        assert await pool.hash(SECRET)
    finally:
        hasher.gate.set()
        pool.close()


async def test_a_cancelled_caller_keeps_its_slot_until_the_hash_ends(hasher: GatedHasher) -> None:
    pool = HashPool(hasher, workers=1, queue=0)
    hasher.gate.clear()
    try:
        waiting = asyncio.ensure_future(pool.verify(None, SECRET))
        await running(hasher)
        waiting.cancel()
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):  # the thread still hashes: the slot is not free yet
            await pool.hash(SECRET)
        hasher.gate.set()
        await settle(pool, 0)
    finally:
        hasher.gate.set()
        pool.close()


async def test_a_slot_taken_ahead_counts_until_its_hash_ends_or_it_is_given_back(
    hasher: GatedHasher,
) -> None:
    pool = HashPool(hasher, workers=1, queue=0)
    with pool.slot():
        assert pool.pending == 1
        with pytest.raises(Overloaded):
            await pool.hash(SECRET)
    assert pool.pending == 0  # never used: given back with the block

    hasher.gate.clear()
    with pool.slot() as slot:
        hashing = asyncio.ensure_future(slot.verify(None, SECRET))
        await running(hasher)
    assert pool.pending == 1  # used: held until the hash itself ends
    with pytest.raises(Overloaded):
        pool.slot()
    hasher.gate.set()
    assert not (await hashing).ok
    await settle(pool, 0)
    with pytest.raises(RuntimeError):
        await slot.hash(SECRET)  # one hash per slot
    pool.close()


async def test_a_caller_cancelled_while_its_hash_waits_gives_the_slot_back(hasher: GatedHasher) -> None:
    pool = HashPool(hasher, workers=1, queue=1)
    hasher.gate.clear()
    running = asyncio.ensure_future(pool.verify(None, SECRET))
    waiting = asyncio.ensure_future(pool.verify(None, SECRET))  # queued behind the running one
    await settle(pool, 2)
    waiting.cancel()  # its job never runs, so only the cancellation can give its slot back
    await settle(pool, 1)
    hasher.gate.set()
    assert not (await running).ok
    await settle(pool, 0)
    assert len(hasher.threads) == 1  # the cancelled one never ran
    pool.close()


def test_rejects_nonsense_sizes(hasher: GatedHasher) -> None:
    with pytest.raises(ValueError, match="workers"):
        HashPool(hasher, workers=0, queue=0)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no per-thread priorities on this platform")
async def test_hashing_threads_yield_to_the_event_loop(hasher: GatedHasher) -> None:
    pool = HashPool(hasher, workers=1, queue=0)
    try:
        loop_niceness = os.getpriority(os.PRIO_PROCESS, 0)
        await pool.verify(None, SECRET)
        assert hasher.niceness == [min(loop_niceness + HASH_NICENESS, 19)]
        assert os.getpriority(os.PRIO_PROCESS, 0) == loop_niceness  # the event loop's thread is untouched
    finally:
        pool.close()
