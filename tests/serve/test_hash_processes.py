"""The hashing processes ``doorward serve --workers N`` shares among its workers: started, replaced,
restarted and stopped by the supervisor (doorward/serve/hash_processes.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from doorward.core.password_hashes import PasswordHasher
from doorward.core.profiles import TESTING
from doorward.serve.hash_processes import Hashers, HashersNotReady
from tests.hashing.processes import RIGHT, pool_on
from tests.servers import HASHING_PROCESS, children_running, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


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


async def test_restart_puts_new_processes_in_place(hashers: Hashers) -> None:
    hasher = PasswordHasher(TESTING, key=b"k")
    pool = pool_on(hashers, hasher)
    stored = await pool.hash(RIGHT)
    old = list(hashers.processes)
    await asyncio.to_thread(hashers.restart)
    assert all(process.returncode == 0 for process in old)
    assert not {p.pid for p in old} & {p.pid for p in hashers.processes}
    assert (await pool.verify(stored, RIGHT)).ok


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
