"""One hashing process (hashing/process.py): slim, deaf to the group's signals, gone with its server."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from doorward.core.password_hashes import PasswordHasher
from doorward.core.profiles import TESTING
from doorward.hashing.wire import encode, read_message
from doorward.serve.hash_processes import Hashers
from tests.hashing.processes import RIGHT, pool_on
from tests.servers import ended, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_a_hashing_process_loads_the_hasher_and_not_the_service() -> None:
    """One runs per core: it must not carry the event loop, the web app, storage, the rest of the
    core, nor the workers' or the supervisor's side of its socket (benchmarks/README.md, figure 5)."""
    heavy = ["asyncio", "logging", "subprocess", "sqlalchemy", "fastapi", "pydantic", "zxcvbn"]
    heavy += ["doorward.core.sessions", "doorward.core.accounts", "doorward.storage", "doorward.web"]
    heavy += ["doorward.hashing.runner", "doorward.serve"]
    heavy += ["prometheus_client", "doorward.metrics", "doorward.core.outcomes"]  # times go in answers
    probe = f"import sys, doorward.hashing.process; print([m for m in {heavy!r} if m in sys.modules])"
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


def test_they_end_when_the_server_that_started_them_is_gone() -> None:
    script = (
        "import os; from doorward.serve.hash_processes import Hashers; h = Hashers(1); h.start(); "
        "print(h.processes[0].pid, h.path, flush=True); os._exit(0)"
    )
    started = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    pid, path = started.stdout.split()
    pid = int(pid)
    shutil.rmtree(Path(path).parent)  # its server died before it could
    assert wait_for(lambda: ended(pid), 10, every=0.01), f"hashing process {pid} outlived its server"


def test_a_worker_of_the_previous_release_still_gets_its_answer(hashers: Hashers) -> None:
    # SIGHUP starts the new hashing processes before it replaces the workers: a worker of the
    # previous release asks without "begun", and reads the answer with nothing before it.
    request = {"profile": "testing", "key": "6b", "op": "hash", "args": [RIGHT.raw]}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(hashers.path)
        sock.sendall(encode(request))
        answer = read_message(sock)
    assert PasswordHasher(TESTING, key=b"k").verify(answer["result"], RIGHT).ok
