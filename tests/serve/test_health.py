"""`/healthz` of `doorward serve --workers N` says whether its hashing processes answer (issue 21, item 1)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

import httpx
import pytest

from tests.servers import HASHING_PROCESS, Server, children_running, ended, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def test_healthz_is_503_while_no_hashing_process_answers(start_server: Callable[..., Server]) -> None:
    server = start_server("--workers", "2", hash_workers="1")
    [hashing] = children_running(server.process.pid, HASHING_PROCESS)
    # Held, the supervisor can neither replace its hashing process nor stop its workers: they serve
    # on while the one process that hashes for them is dead, the socket still there.
    server.process.send_signal(signal.SIGSTOP)
    try:
        os.kill(hashing, signal.SIGKILL)
        assert wait_for(lambda: ended(hashing), 5)
        with httpx.Client(base_url=server.base_url, timeout=20) as client:
            response = client.get("/healthz")
            assert response.status_code == 503, server.explain(response.text)
            body = response.json()
            assert body["success"] is False and body["code"] == "unavailable", body
            assert "hashing" in body["error"].lower(), body
            assert client.head("/healthz").status_code == 503
            server.process.send_signal(signal.SIGCONT)  # it starts a new hashing process at once
            healthy = wait_for(lambda: client.get("/healthz").status_code == 200, 15, every=0.2)
            assert healthy, server.explain("still 503 after a new hashing process started")
            assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        server.process.send_signal(signal.SIGCONT)
