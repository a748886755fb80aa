"""The hashing processes ``doorward serve --workers N`` shares among its workers (doorward/hashers.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doorward import hashers as hashers_module
from doorward.core.errors import Overloaded, UnrecognisedHash
from doorward.core.hashpool import HashPool
from doorward.core.password_hashes import WRAPPED_SHA256_PREFIX, PasswordHasher
from doorward.core.passwords import Password
from doorward.core.profiles import OWASP_2023, RFC_9106_LOW_MEMORY, TESTING
from doorward.hashers import Hashers, HashersNotReady, HashingFailed, ProcessRunner
from tests.servers import HASHING_PROCESS, children_running, ended, state, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

RIGHT = Password("correct horse battery staple")
WRONG = Password("correct horse battery stapler")


@pytest.fixture
def hashers() -> Iterator[Hashers]:
    started = Hashers(2)
    started.start()
    assert settled(started)
    try:
        yield started
    finally:
        started.stop()


def pool_on(hashers: Hashers, hasher: PasswordHasher, capacity: int = 8) -> HashPool:
    return HashPool(hasher, capacity, 0, ProcessRunner(hashers.path))


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def settled(hashers: Hashers) -> bool:
    """Every process has started and waits for work."""
    return wait_for(lambda: all(state(p.pid) == "S" for p in hashers.processes), 10, every=0.001)


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
    hasher = PasswordHasher(OWASP_2023, key=b"k")
    stored = hasher.hash(RIGHT)
    pool = pool_on(hashers, hasher, capacity=1)
    asked = asyncio.ensure_future(pool.verify(stored, RIGHT))
    await asyncio.sleep(0)
    asked.cancel()  # the client went away: its hash is on its way to a process anyway
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


async def test_no_processes_to_ask_is_a_503_at_once(tmp_path: Path) -> None:
    hasher = PasswordHasher(TESTING, key=b"k")
    pool = HashPool(hasher, 1, 0, ProcessRunner(str(tmp_path / "nothing")))
    with pytest.raises(HashingFailed):
        await asyncio.wait_for(pool.verify(None, RIGHT), 5)
    assert pool.pending == 0


async def test_a_run_of_failures_is_logged_as_one_line_and_then_a_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(hashers_module, "FAILURE_LOG_SECONDS", 0.2)
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
    monkeypatch.setattr(hashers_module, "ANSWER_SECONDS", 0.2)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(tmp_path / "socket"))
        listener.listen(8)
        hasher = PasswordHasher(TESTING, key=b"k")
        pool = HashPool(hasher, 1, 0, ProcessRunner(str(tmp_path / "socket")))
        with pytest.raises(HashingFailed):
            await asyncio.wait_for(pool.verify(None, RIGHT), 5)
        assert pool.pending == 0


def test_a_restart_told_to_give_up_keeps_the_old_processes(
    hashers: Hashers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="doorward.hashers")
    old = [process.pid for process in hashers.processes]
    asked = 0

    def stopping() -> bool:  # the server is asked to stop once the new processes are starting
        nonlocal asked
        asked += 1
        return asked > 1

    started = time.monotonic()
    hashers.restart(stopping)
    assert time.monotonic() - started < 5
    assert [process.pid for process in hashers.processes] == old
    assert "a stop was asked: the new hashing processes are not taking over" in caplog.text
    # The new ones were started and have gone again: only the old ones are this process's children.
    assert wait_for(lambda: sorted(children_running(os.getpid(), HASHING_PROCESS)) == sorted(old), 10)


def test_the_socket_is_private_and_gone_after_stop() -> None:
    hashers = Hashers(1)
    hashers.start()
    try:
        directory = Path(hashers.path).parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_ISSOCK(Path(hashers.path).stat().st_mode)
        process = hashers.processes[0]
    finally:
        hashers.stop()
    assert process.returncode == 0  # finished, not killed
    assert not directory.exists()


def test_a_hashing_process_loads_the_hasher_and_not_the_service() -> None:
    """One runs per core: it must not carry the event loop, the web app, storage or the rest of
    the core (24.8 MiB resident with them, 18.4 MiB without, measured when it was split off)."""
    heavy = ["asyncio", "logging", "subprocess", "sqlalchemy", "fastapi", "pydantic", "zxcvbn"]
    heavy += ["doorward.core.sessions", "doorward.core.accounts", "doorward.storage", "doorward.web"]
    probe = f"import sys, doorward.hashing_process; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


async def test_sigterm_leaves_them_hashing_for_the_workers_still_finishing(hashers: Hashers) -> None:
    hasher = PasswordHasher(TESTING, key=b"k")
    pool = pool_on(hashers, hasher)
    stored = await pool.hash(RIGHT)  # both have started and installed their handlers
    await asyncio.gather(*(pool.verify(stored, RIGHT) for _ in range(4)))
    for process in hashers.processes:
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGINT)
    await asyncio.sleep(1.0)
    assert all(process.poll() is None for process in hashers.processes)
    assert (await pool.verify(stored, RIGHT)).ok


async def test_restart_puts_new_processes_in_place(hashers: Hashers) -> None:
    hasher = PasswordHasher(TESTING, key=b"k")
    pool = pool_on(hashers, hasher)
    stored = await pool.hash(RIGHT)
    old = list(hashers.processes)
    await asyncio.to_thread(hashers.restart)
    assert all(process.returncode == 0 for process in old)
    assert not {p.pid for p in old} & {p.pid for p in hashers.processes}
    assert (await pool.verify(stored, RIGHT)).ok


def test_they_end_when_the_server_that_started_them_is_gone() -> None:
    script = (
        "import os; from doorward.hashers import Hashers; h = Hashers(1); h.start(); "
        "print(h.processes[0].pid, h.path, flush=True); os._exit(0)"
    )
    started = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    pid, path = started.stdout.split()
    pid = int(pid)
    shutil.rmtree(Path(path).parent)  # its server died before it could
    assert wait_for(lambda: ended(pid), 10, every=0.01), f"hashing process {pid} outlived its server"


@pytest.fixture
def bad_deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New processes import a doorward that fails, as after a deploy missing a compiled module."""
    package = tmp_path / "broken" / "doorward"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise ImportError("a bad deploy")\n')
    monkeypatch.setenv("PYTHONPATH", str(package.parent))


async def test_sighup_keeps_the_old_processes_when_the_new_ones_cannot_start(
    hashers: Hashers, bad_deploy: None, caplog: pytest.LogCaptureFixture
) -> None:
    hasher = PasswordHasher(TESTING, key=b"k")
    pool = pool_on(hashers, hasher)
    stored = await pool.hash(RIGHT)
    old = list(hashers.processes)
    await asyncio.to_thread(hashers.restart)
    assert hashers.processes == old and all(process.poll() is None for process in old)
    assert "did not get ready: keeping the old ones" in caplog.text
    assert (await pool.verify(stored, RIGHT)).ok


def test_processes_that_cannot_start_stop_the_server_from_starting(bad_deploy: None) -> None:
    hashers = Hashers(2)
    try:
        with pytest.raises(HashersNotReady):
            hashers.start()
    finally:
        hashers.stop()
    assert children_running(os.getpid(), HASHING_PROCESS) == []  # none left running


def test_a_process_that_keeps_dying_is_replaced_after_longer_waits(hashers: Hashers) -> None:
    def kill_first() -> int:
        process = hashers.processes[0]
        process.kill()
        process.wait()
        return process.pid

    first = kill_first()
    hashers.replace_dead()  # the first death: replaced at once
    second = hashers.processes[0].pid
    assert second != first
    kill_first()
    hashers.replace_dead()  # died again at once: its successor waits a second
    assert hashers.processes[0].pid == second
    assert wait_for(lambda: (hashers.replace_dead(), hashers.processes[0].pid != second)[1], 5, every=0.1)
    assert hashers.processes[1].poll() is None  # the other place was left alone
