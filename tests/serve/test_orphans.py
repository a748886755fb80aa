"""``doorward serve --workers N`` whose supervisor dies: nothing of it lives on (issue 21, item 1)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import Server, ended, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the children of each of its threads, and theirs)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def test_a_killed_supervisor_leaves_no_process_and_frees_the_port(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("--workers", "2", hash_workers="2")
    # Two workers, two hashing processes and multiprocessing's resource tracker.
    assert wait_for(lambda: len(descendants(server.process.pid)) >= 5, 10), server.explain()
    left = descendants(server.process.pid)
    try:
        server.process.kill()
        server.process.wait()
        gone = wait_for(lambda: all(ended(pid) for pid in left), 5)
        alive = [pid for pid in left if not ended(pid)]
        assert gone, server.explain(f"still running 5 s after the supervisor's death: {alive}")
        with socket.socket() as sock:  # as serve binds it: nothing listens there any more
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port_of(server)))
            sock.listen()
        assert "the supervisor has gone" in server.stderr(), server.explain()
    finally:
        for pid in left:  # what a failure left behind; all started by this test
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
