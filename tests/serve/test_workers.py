"""``doorward serve --workers N``: connections spread over the workers; the supervisor keeps them up."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from doorward.serve.sockets import listening_sockets
from doorward.storage import upgrade
from tests.servers import (
    HASHING_PROCESS,
    Server,
    children_running,
    doorward_env,
    ended,
    free_port,
    wait_for,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SO_REUSEPORT as Linux"),
]


def worker_pids(server: Server) -> list[int]:
    """The worker processes of the server (the spawned children, not multiprocessing's helpers)."""
    return children_running(server.process.pid, b"spawn_main")


def connections_per_worker(server: Server, port: int) -> list[int]:
    """Established connections on ``port`` that each worker holds, read from /proc."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "01":
            inodes.add(fields[9])
    counts = []
    for pid in worker_pids(server):
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in inodes
        counts.append(held)
    return counts


@contextmanager
def burst(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections opened as fast as one loop can, as a proxy's pool or wrk opens them."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.setblocking(False)
            with suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            sockets.append(sock)
        yield sockets


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def test_a_burst_of_connections_spreads_over_both_workers(start_server: Callable[..., Server]) -> None:
    # With one socket shared by the workers, the first to wake accepted most of a burst (measured:
    # in 20 bursts of 64, one worker held fewer than 12 in 8, 3 at worst; this test, run against
    # that code, saw 64:0), so it fails then with odds of about 98%. With a socket per worker, the
    # kernel picks one for each connection: fewer than 12 of 64 in any of 8 bursts has odds of
    # about 1 in 400,000.
    server = start_server("--workers", "2")
    port = port_of(server)
    for _ in range(8):
        with burst(port, 64):
            settled = wait_for(lambda: sum(connections_per_worker(server, port)) == 64, 10)
            counts = connections_per_worker(server, port)
            assert settled, server.explain(counts)
            assert len(counts) == 2 and min(counts) >= 12, server.explain(counts)


def test_a_worker_that_dies_is_replaced_and_every_connection_is_answered(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("--workers", "2")
    first = worker_pids(server)
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)
    # Connections made right away reach the dead worker's socket too: they wait for its successor.
    with httpx.Client(base_url=server.base_url, timeout=20) as client:
        statuses = [client.get("/healthz", headers={"Connection": "close"}).status_code for _ in range(32)]
    assert statuses == [200] * 32, server.explain(statuses)
    assert wait_for(lambda: len(worker_pids(server)) == 2)
    now = worker_pids(server)
    assert first[1] in now and first[0] not in now
    assert f"worker {first[0]} ended" in server.stderr()


def test_sighup_replaces_every_worker_while_every_request_is_answered(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("--workers", "2")
    first = set(worker_pids(server)) | set(hashing_pids(server))
    statuses: list[int | str] = []
    done = threading.Event()
    body = {"email": "sighup@example.com", "password": "correct horse battery staple"}
    assert httpx.post(server.base_url + "/register", json=body, timeout=20).status_code == 201

    def keep_asking() -> None:
        with httpx.Client(base_url=server.base_url, timeout=20) as client:
            while not done.is_set():
                try:  # logins, which need the hashing processes, each on a connection of its own
                    statuses.append(
                        client.post("/login", json=body, headers={"Connection": "close"}).status_code
                    )
                except httpx.HTTPError as exc:
                    statuses.append(repr(exc))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        server.process.send_signal(signal.SIGHUP)
        replaced = wait_for(lambda: server.stderr().count("replaces worker") == 2, 30)
    finally:
        done.set()
        asker.join()
    assert replaced, server.explain(worker_pids(server))
    assert server.process.poll() is None
    assert len(statuses) > 10 and set(statuses) == {200}, server.explain(statuses)
    now = worker_pids(server)
    assert len(now) == 2 and not first & set(now)
    assert hashing_pids(server) and not first & set(hashing_pids(server))  # new code for them too


def hashing_pids(server: Server) -> list[int]:
    """The server's hashing processes (doorward/hashing/process.py)."""
    return children_running(server.process.pid, HASHING_PROCESS)


@pytest.mark.parametrize("configured", [False, True], ids=["default", "configured"])
def test_the_workers_share_one_set_of_hashing_processes(
    start_server: Callable[..., Server], configured: bool
) -> None:
    # As many as the cores by default, whatever the workers; the workers hash in them, not in threads.
    expected = len(os.sched_getaffinity(0)) + (1 if configured else 0)
    settings = {"hash_workers": str(expected)} if configured else {}
    server = start_server("--workers", "2", **settings)
    # Healthy means one worker has started; the other may still be starting.
    said = wait_for(
        lambda: server.stderr().count(f"hashing on {expected} hashing processes the workers share") == 2, 10
    )
    assert said, server.explain(f"each of 2 workers should hash in {expected} shared processes")
    assert len(hashing_pids(server)) == expected, server.explain()
    with httpx.Client(base_url=server.base_url, timeout=20) as client:
        body = {"email": "shared@example.com", "password": "correct horse battery staple"}
        assert client.post("/register", json=body).status_code == 201
        dead = hashing_pids(server)[0]
        os.kill(dead, signal.SIGKILL)
        # The log says "ended" before the replacement starts: wait for the one that says it replaces it.
        assert wait_for(lambda: f"replaces {dead}" in server.stderr(), 10), server.explain()
        assert len(hashing_pids(server)) == expected, server.explain()
        # A new connection each time, so that both workers are most likely asked.
        statuses = {
            client.post("/login", json=body, headers={"Connection": "close"}).status_code for _ in range(6)
        }
        assert statuses == {200}, server.explain(statuses)


def test_sigterm_stops_the_server_and_every_worker(start_server: Callable[..., Server]) -> None:
    server = start_server("--workers", "2")
    workers = worker_pids(server) + hashing_pids(server)
    assert len(workers) > 2
    server.stop()
    assert server.process.returncode == 0, server.explain()
    for pid in workers:
        assert ended(pid)


def test_sigterm_during_a_reload_stops_without_replacing_the_rest(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("--workers", "2")
    workers = worker_pids(server)
    server.process.send_signal(signal.SIGHUP)
    # The first new worker takes a second or more to start: the stop arrives while it does.
    assert wait_for(lambda: "replacing the workers one at a time" in server.stderr(), 10), server.explain()
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(15)  # without waiting for the reload to replace either worker
    finally:
        server.stop()
    log = server.stderr()
    assert "not replacing the rest" in log and "replaces worker" not in log, server.explain()
    assert server.process.returncode == 0, server.explain()
    for pid in workers:
        assert ended(pid)


def test_sighup_and_sigterm_together_stop_without_a_reload(start_server: Callable[..., Server]) -> None:
    server = start_server("--workers", "2")
    hashing = hashing_pids(server)
    server.process.send_signal(signal.SIGHUP)
    server.process.send_signal(signal.SIGTERM)  # arrives before the reload, or while it begins
    try:
        server.process.wait(15)
    finally:
        server.stop()
    log = server.stderr()
    assert "received SIGTERM: stopping the workers" in log, server.explain()
    assert "replace the old ones" not in log and "replaces worker" not in log, server.explain()
    assert server.process.returncode == 0, server.explain()
    for pid in hashing:
        assert ended(pid)


def serve(
    database_url: str, *args: str, timeout: float = 30, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``doorward serve --workers 2 *args`` expected to exit by itself; its workers die with it."""
    with subprocess.Popen(
        [sys.executable, "-m", "doorward", "serve", "--workers", "2", *args],
        env=doorward_env(database_url) | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the supervisor and any worker it started
            process.communicate()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_a_port_already_listened_on_is_refused_at_once(tmp_path: Path, reuse_port: bool) -> None:
    # SO_REUSEPORT would let a second server quietly take half the first one's connections.
    with socket.socket() as holder:
        if reuse_port:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = serve(f"sqlite:///{tmp_path / 'd.db'}", "--port", str(port))
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last == f"error: cannot listen on 127.0.0.1:{port}: Address already in use", result.stderr


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def _answers(host: str, port: int) -> bool:
    """Whether a TCP connection to host:port is taken (the kernel completes it; nobody accepts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as client:
        client.settimeout(2)
        try:
            client.connect((host, port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not _ipv6(), reason="IPv6 is not available on this machine")
def test_host_any_ipv6_takes_ipv6_only_with_several_workers_as_with_one() -> None:
    """One worker listens as asyncio binds (IPv6 only on "::"); several on sockets of their own,
    which took IPv4 connections on "::" too until they were made to listen the same way."""

    async def one_worker() -> int:
        server = await asyncio.get_running_loop().create_server(asyncio.Protocol, host="::", port=0)
        try:
            return int(server.sockets[0].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        finally:
            server.close()
            await server.wait_closed()

    sockets = listening_sockets("::", 0, 2, 16)
    try:
        port = sockets[0].getsockname()[1]
        several = {int(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)) for sock in sockets}
        assert several == {asyncio.run(one_worker())} == {1}
        assert _answers("::1", port)
        assert not _answers("127.0.0.1", port)  # refused: nothing listens there on IPv4
    finally:
        for sock in sockets:
            sock.close()


def test_an_address_that_cannot_be_listened_on_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    result = serve(f"sqlite:///{tmp_path / 'd.db'}", "--host", "192.0.2.1", "--port", str(port))  # TEST-NET-1
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"error: cannot listen on 192.0.2.1:{port}: "), result.stderr
    assert "Traceback" not in result.stderr


def test_no_place_for_the_hashing_socket_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # a socket's path may not be this long
    deep.mkdir(parents=True)
    result = serve(f"sqlite:///{tmp_path / 'd.db'}", "--port", str(free_port()), env={"TMPDIR": str(deep)})
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: cannot create the hashing processes' socket: "), result.stderr
    assert list(deep.iterdir()) == []  # nothing left behind


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    # A table missing behind an up-to-date revision (serve checks the revision, not every table):
    # the application cannot start, and restarting the worker would fail the same way, so the
    # server gives up with an error rather than looping.
    database_url = f"sqlite:///{tmp_path / 'broken.db'}"
    upgrade(database_url)
    with sqlite3.connect(tmp_path / "broken.db") as connection:
        connection.execute("DROP TABLE secrets")
    result = serve(database_url, "--no-migrate", "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == "error: a worker failed to start (its log is above)"
