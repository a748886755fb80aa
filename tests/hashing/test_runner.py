"""The workers' side of the hashing processes (doorward/hashing/runner.py): a HashPool that hashes in them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from doorward.core.errors import Overloaded, UnrecognisedHash
from doorward.core.hashpool import HashPool
from doorward.core.password_hashes import WRAPPED_SHA256_PREFIX, PasswordHasher
from doorward.core.profiles import OWASP_2023, RFC_9106_LOW_MEMORY, TESTING
from doorward.hashing import runner
from doorward.hashing.runner import HashingFailed, ProcessRunner
from doorward.serve.hash_processes import Hashers
from tests.hashing.processes import RIGHT, WRONG, cpu_ticks, pool_on, settled
from tests.servers import state, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


async def test_the_processes_answer_as_the_hasher_in_this_process(hashers: Hashers) -> None:
    hasher = PasswordHasher(TESTING, key=os.urandom(32))
    pool = pool_on(hashers, hasher)
    stored = await pool.hash(RIGHT)
    assert hasher.verify(stored, RIGHT).ok  # made over there, checked here
    assert (await pool.verify(stored, RIGHT)).ok
    assert not (await pool.verify(stored, WRONG)).ok
    assert not (await pool.verify(None, RIGHT)).ok  # no such account
    older = PasswordHasher(OWASP_2023, key=hasher.key).hash(RIGHT)
    assert (await pool.verify(older, RIGHT)).needs_rehash
    # An imported SHA-256 is wrapped with the key, which the processes got from this hasher.
    legacy = hashlib.sha256(RIGHT.raw.encode()).hexdigest()
    wrapped = await pool.for_import(legacy)
    assert wrapped.startswith(WRAPPED_SHA256_PREFIX)
    assert hasher.verify(wrapped, RIGHT).ok
    verdict = await pool.verify(wrapped, RIGHT)
    assert verdict.ok and verdict.needs_rehash
    other = PasswordHasher(TESTING, key=b"another key")
    assert not (await pool_on(hashers, other).verify(wrapped, RIGHT)).ok
    with pytest.raises(UnrecognisedHash, match="Unrecognised"):
        await pool.for_import("not a hash")
    assert pool.pending == 0


async def test_the_hashes_of_one_worker_run_in_every_process(hashers: Hashers) -> None:
    hasher = PasswordHasher(OWASP_2023, key=b"k")
    stored = hasher.hash(RIGHT)
    pool = pool_on(hashers, hasher)
    pids = [process.pid for process in hashers.processes]
    before = [cpu_ticks(pid) for pid in pids]
    verdicts = await asyncio.gather(*(pool.verify(stored, RIGHT) for _ in range(8)))
    assert all(verdict.ok for verdict in verdicts)
    gained = [cpu_ticks(pid) - was for pid, was in zip(pids, before, strict=True)]
    # Each verify costs a dozen milliseconds or more: both processes took some of the eight.
    assert all(ticks >= 1 for ticks in gained), gained


async def test_a_process_that_dies_mid_hash_is_a_503_and_is_replaced(hashers: Hashers) -> None:
    # The costliest profile, so that the process hashing it is told apart by the CPU it takes:
    # an idle one waking to check on its parent takes far less than 30 ms.
    hasher = PasswordHasher(RFC_9106_LOW_MEMORY, key=b"k")
    stored = hasher.hash(RIGHT)
    pool = pool_on(hashers, hasher)
    before = {p.pid: cpu_ticks(p.pid) for p in hashers.processes}
    asked = asyncio.ensure_future(pool.verify(stored, RIGHT))

    def hashing() -> list[int]:
        return [pid for pid, was in before.items() if cpu_ticks(pid) - was >= 3]

    busy = await asyncio.to_thread(wait_for, lambda: bool(hashing()), 10, 0.001)
    assert busy, "no hashing process took the hash"
    os.kill(hashing()[0], signal.SIGKILL)
    with pytest.raises(HashingFailed):
        await asyncio.wait_for(asked, 10)
    assert isinstance(HashingFailed(), Overloaded)  # answered as 503, as when the pool is full
    dead = [p.pid for p in hashers.processes]
    await asyncio.to_thread(wait_for, lambda: any(p.poll() is not None for p in hashers.processes), 10, 0.001)
    hashers.replace_dead()
    assert len({p.pid for p in hashers.processes} - set(dead)) == 1
    assert (await pool.verify(stored, RIGHT)).ok
    assert pool.pending == 0


async def test_a_hash_no_one_waits_for_keeps_its_place_until_it_ends(hashers: Hashers) -> None:
    hasher = PasswordHasher(RFC_9106_LOW_MEMORY, key=b"k")  # ~0.4 s: long enough to see it run
    stored = hasher.hash(RIGHT)
    pool = pool_on(hashers, hasher, capacity=1)
    asked = asyncio.ensure_future(pool.verify(stored, RIGHT))
    hashing = lambda: any(state(p.pid) == "R" for p in hashers.processes)  # noqa: E731
    assert await asyncio.to_thread(wait_for, hashing, 10, 0.001)
    # Running is not yet hashing (the process also runs to read the request and build the hasher,
    # before its BEGUN byte): a tenth of the ~0.4 s hash later, the byte has been sent and read.
    await asyncio.sleep(0.1)
    asked.cancel()  # the client went away once its hash had begun: it runs to its end anyway
    with pytest.raises(asyncio.CancelledError):
        await asked
    assert pool.pending == 1
    with pytest.raises(Overloaded):
        pool.slot()
    for _ in range(500):
        if pool.pending == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.pending == 0
    assert (await pool.verify(stored, RIGHT)).ok


async def test_a_hash_given_up_while_queued_frees_its_slot_and_never_runs(hashers: Hashers) -> None:
    # The processes held (SIGSTOP): the hashes wait in the socket's queue, as behind busy processes.
    hasher = PasswordHasher(RFC_9106_LOW_MEMORY, key=b"k")  # ~0.4 s of CPU each, were they run
    pool = pool_on(hashers, hasher, capacity=4)
    for process in hashers.processes:
        os.kill(process.pid, signal.SIGSTOP)
    try:
        asked = [asyncio.ensure_future(pool.verify(None, RIGHT)) for _ in range(4)]
        await asyncio.sleep(0.2)  # each has connected and sent its request
        assert pool.full
        for waiting in asked:
            waiting.cancel()  # their clients went away (web/disconnects.py)
        await asyncio.gather(*asked, return_exceptions=True)
        assert pool.pending == 0  # at once, while the processes still have not accepted them
        before = sum(cpu_ticks(process.pid) for process in hashers.processes)
    finally:
        for process in hashers.processes:
            os.kill(process.pid, signal.SIGCONT)
    assert settled(hashers)  # they went through their queue, and wait for work again
    spent = sum(cpu_ticks(process.pid) for process in hashers.processes) - before
    assert spent < 20, f"{spent} ticks: the abandoned hashes ran"  # 4 hashes take ~150
    assert (await pool.verify(await pool.hash(RIGHT), RIGHT)).ok


async def test_no_processes_to_ask_is_a_503_at_once(tmp_path: Path) -> None:
    hasher = PasswordHasher(TESTING, key=b"k")
    pool = HashPool(hasher, 1, 0, ProcessRunner(str(tmp_path / "nothing")))
    with pytest.raises(HashingFailed):
        await asyncio.wait_for(pool.verify(None, RIGHT), 5)
    assert pool.pending == 0


async def test_a_run_of_failures_is_logged_as_one_line_and_then_a_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runner, "FAILURE_LOG_SECONDS", 0.2)
    hasher = PasswordHasher(TESTING, key=b"k")
    pool = HashPool(hasher, 1, 0, ProcessRunner(str(tmp_path / "nothing")))
    for _ in range(50):
        with pytest.raises(HashingFailed):
            await pool.verify(None, RIGHT)
    lines = [r.getMessage() for r in caplog.records if r.name == "doorward.hashers"]
    assert len(lines) == 1 and "did not answer" in lines[0]
    await asyncio.sleep(0.3)
    lines = [r.getMessage() for r in caplog.records if r.name == "doorward.hashers"]
    assert lines[1:] == ["49 more failed hashes since (not logged one by one)"]
    await asyncio.sleep(0.3)  # a second window, without failures: nothing to sum up
    for _ in range(2):  # after a quiet spell the first is logged at once again
        with pytest.raises(HashingFailed):
            await pool.verify(None, RIGHT)
    pool.close()  # the count of the window still open is logged, not lost
    lines = [r.getMessage() for r in caplog.records if r.name == "doorward.hashers"]
    assert len(lines) == 4 and "did not answer" in lines[2]
    assert lines[3] == "1 more failed hashes since (not logged one by one)"


async def test_no_answer_in_time_is_a_503_that_frees_its_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # All the processes dead and none replaced yet: a connection waits in the queue of a socket
    # no one accepts on. The login gives up after ANSWER_SECONDS instead of holding its slot.
    monkeypatch.setattr(runner, "ANSWER_SECONDS", 0.2)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(tmp_path / "socket"))
        listener.listen(8)
        hasher = PasswordHasher(TESTING, key=b"k")
        pool = HashPool(hasher, 1, 0, ProcessRunner(str(tmp_path / "socket")))
        with pytest.raises(HashingFailed):
            await asyncio.wait_for(pool.verify(None, RIGHT), 5)
        assert pool.pending == 0
