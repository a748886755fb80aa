"""The hash pool: bounded, off the event loop, refusing at once when full."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from doorward.core.errors import Overloaded
from doorward.core.hashpool import HashPool
from doorward.core.priority import HASH_NICENESS


async def test_runs_off_the_event_loop() -> None:
    pool = HashPool(workers=1, queue=0)
    try:
        name = await pool.run(lambda: threading.current_thread().name)
        assert name.startswith("doorward-hash")
    finally:
        pool.close()


async def test_refuses_at_once_beyond_workers_plus_queue() -> None:
    pool = HashPool(workers=1, queue=1)
    release = threading.Event()
    try:
        running = [asyncio.ensure_future(pool.run(release.wait)) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert pool.pending == 2
        with pytest.raises(Overloaded):
            await pool.run(lambda: None)
        release.set()
        await asyncio.gather(*running)
        assert pool.pending == 0
        assert await pool.run(lambda: 42) == 42
    finally:
        release.set()
        pool.close()


async def test_a_cancelled_caller_keeps_its_slot_until_the_hash_ends() -> None:
    pool = HashPool(workers=1, queue=0)
    release = threading.Event()
    try:
        waiting = asyncio.ensure_future(pool.run(release.wait))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):  # the thread still hashes: the slot is not free yet
            await pool.run(lambda: None)
        release.set()
        for _ in range(100):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.pending == 0
    finally:
        release.set()
        pool.close()


async def test_a_slot_taken_ahead_counts_until_its_hash_ends_or_it_is_given_back() -> None:
    pool = HashPool(workers=1, queue=0)
    with pool.slot():
        assert pool.pending == 1
        with pytest.raises(Overloaded):
            await pool.run(sum, [1])
    assert pool.pending == 0  # never used: given back with the block

    release = threading.Event()
    with pool.slot() as slot:
        hashing = asyncio.ensure_future(slot.run(release.wait, 5))
        await asyncio.sleep(0.05)
    assert pool.pending == 1  # used: held until the hash itself ends
    with pytest.raises(Overloaded):
        pool.slot()
    release.set()
    assert await hashing is True
    await asyncio.sleep(0.01)
    assert pool.pending == 0
    with pytest.raises(RuntimeError):
        await slot.run(sum, [1])  # one hash per slot
    pool.close()


async def test_a_caller_cancelled_while_its_hash_waits_gives_the_slot_back() -> None:
    pool = HashPool(workers=1, queue=1)
    release = threading.Event()
    running = asyncio.ensure_future(pool.run(release.wait, 5))
    waiting = asyncio.ensure_future(pool.run(sum, [1]))  # queued behind the running one
    await asyncio.sleep(0.05)
    assert pool.pending == 2
    waiting.cancel()  # its job never runs, so only the cancellation can give its slot back
    await asyncio.sleep(0.05)
    assert pool.pending == 1
    release.set()
    assert await running is True
    await asyncio.sleep(0.01)
    assert pool.pending == 0
    pool.close()


def test_rejects_nonsense_sizes() -> None:
    with pytest.raises(ValueError, match="workers"):
        HashPool(workers=0, queue=0)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no per-thread priorities on this platform")
async def test_hashing_threads_yield_to_the_event_loop() -> None:
    pool = HashPool(workers=1, queue=0)
    try:
        loop_niceness = os.getpriority(os.PRIO_PROCESS, 0)
        hash_niceness = await pool.run(os.getpriority, os.PRIO_PROCESS, 0)
        assert hash_niceness == min(loop_niceness + HASH_NICENESS, 19)
        assert os.getpriority(os.PRIO_PROCESS, 0) == loop_niceness  # the event loop's thread is untouched
    finally:
        pool.close()
