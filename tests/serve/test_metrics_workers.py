"""/metrics under ``doorward serve --workers 2`` (issue 22): one scrape holds every worker's counts
(and the hashing processes' times), on the main port and on the supervisor's address alike."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from doorward.metrics import FLUSH_SECONDS
from tests.conftest import EMAIL, PASSWORD, bearer
from tests.servers import Server, children_running, doorward_env, free_port, wait_for
from tests.web.test_metrics import TOKEN, Samples, samples, value

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SO_REUSEPORT as Linux"),
]

LOGINS = 20
CHECKS = 30
WRONG = 10


@pytest.fixture
def short_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TMPDIR of the server's own (short: the hashing socket's path lives there), to see its files."""
    path = Path(tempfile.mkdtemp(prefix="dwm-"))
    monkeypatch.setenv("TMPDIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fresh_connections(base_url: str) -> httpx.Client:
    """A client that opens a connection per request, so the kernel spreads them over the workers."""
    return httpx.Client(base_url=base_url, limits=httpx.Limits(max_keepalive_connections=0), timeout=10)


def worker_pids(server: Server) -> list[int]:
    return children_running(server.process.pid, b"spawn_main")


def test_one_scrape_counts_every_workers_requests(
    start_server: Callable[..., Server], short_tmpdir: Path
) -> None:
    metrics_port = free_port()
    server: Server = start_server(
        "--workers", "2", metrics_token=TOKEN, metrics_address=f"127.0.0.1:{metrics_port}"
    )
    with fresh_connections(server.base_url) as client:
        assert client.post("/register", json={"email": EMAIL, "password": PASSWORD}).status_code == 201
        tokens = []
        for _ in range(LOGINS):
            response = client.post("/login", json={"email": EMAIL, "password": PASSWORD})
            assert response.status_code == 200, response.text
            tokens.append(response.json()["sessionToken"])
        for index in range(CHECKS):
            assert client.get("/session", headers=bearer(tokens[index % LOGINS])).status_code == 200
        for _ in range(WRONG):
            assert client.get("/session", headers=bearer("x" * 43)).status_code == 401

        def scraped_on_main_port() -> Samples:
            response = client.get("/metrics", headers=bearer(TOKEN))
            assert response.status_code == 200, response.text
            return samples(response.text)

        # Each worker moves its session checks into the shared files every second (FLUSH_SECONDS).
        time.sleep(FLUSH_SECONDS + 0.5)
        on_main_port = [scraped_on_main_port() for _ in range(4)]  # whichever worker answers
    with fresh_connections(f"http://127.0.0.1:{metrics_port}") as direct:
        on_address = samples(direct.get("/metrics").text)

    # Both workers answered some of it, and each wrote its own files: the scrape summed them.
    directories = list(short_tmpdir.glob("doorward-metrics-*"))
    assert len(directories) == 1, server.explain(directories)
    writers = {int(path.stem.rsplit("_", 1)[1]) for path in directories[0].glob("counter_*.db")}
    assert writers == set(worker_pids(server)), server.explain(writers)

    for scrape in [*on_main_port, on_address]:
        assert value(scrape, "doorward_logins_total", method="password", outcome="success") == LOGINS
        assert value(scrape, "doorward_session_checks_total", outcome="valid") == CHECKS
        assert value(scrape, "doorward_session_checks_total", outcome="invalid_session") == WRONG
        assert value(scrape, "doorward_registrations_total", outcome="success") == 1
        assert value(scrape, "doorward_request_duration_seconds_count", route="/session") == CHECKS + WRONG
        # Computed by the hashing processes, reported in their answers.
        assert value(scrape, "doorward_hash_duration_seconds_count", op="verify") == LOGINS
        assert value(scrape, "doorward_hash_duration_seconds_count", op="hash") == 1
        assert value(scrape, "doorward_hash_slots_busy") == 0

    # A worker that dies keeps its counts in the scrape; its replacement adds to them.
    victim = worker_pids(server)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in worker_pids(server) and len(worker_pids(server)) == 2), (
        server.explain()
    )
    with fresh_connections(f"http://127.0.0.1:{metrics_port}") as direct:
        after = samples(direct.get("/metrics").text)
    assert value(after, "doorward_logins_total", method="password", outcome="success") == LOGINS
    assert value(after, "doorward_session_checks_total", outcome="valid") == CHECKS
    assert not list(directories[0].glob(f"gauge_live*_{victim}.db"))  # its live gauges went with it

    server.stop()
    assert not directories[0].exists()  # removed with the server


def test_metrics_are_off_without_the_settings(start_server: Callable[..., Server]) -> None:
    server: Server = start_server("--workers", "2")
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 404


def test_a_busy_metrics_address_stops_the_server_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = doorward_env(f"sqlite:///{tmp_path / 'd.db'}", metrics_address=f"127.0.0.1:{taken}")
        result = subprocess.run(
            [sys.executable, "-m", "doorward", "serve", "--workers", "2", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last == f"error: cannot listen on 127.0.0.1:{taken}: Address already in use", result.stderr
    assert "Traceback" not in result.stderr
