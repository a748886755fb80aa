"""A login whose client has gone gives up its place in the hash queue (issue 21, item 21)."""

from __future__ import annotations

import json
import select
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import Server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


def send_login(port: int, email: str) -> socket.socket:
    """A connection that has sent a whole login, as a load generator's does before it gives up."""
    body = json.dumps({"email": email, "password": PASSWORD}).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def answered(sockets: list[socket.socket], seconds: float) -> list[bytes]:
    """The status lines of the logins answered within ``seconds`` (b"" for each still waiting)."""
    readable, _, _ = select.select(sockets, [], [], seconds)
    return [sock.recv(64).split(b"\r\n")[0] if sock in readable else b"" for sock in sockets]


@contextmanager
def full_queue(port: int, count: int) -> Iterator[None]:
    """``count`` logins sent at once, more than the queue holds: the others are refused 503 and
    these hold every slot, waiting; all are closed (their clients gone) when the block ends."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(send_login(port, f"gone{i}@example.com")) for i in range(count)]
        statuses = answered(sockets, 0.5)
        assert b"HTTP/1.1 503 Service Unavailable" in statuses, statuses
        yield


def failed_logins(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT count(*) FROM audit_events WHERE event = 'login.failed'"
        ).fetchone()[0]


@pytest.mark.parametrize("workers", [1, 2], ids=["threads", "hashing-processes"])
def test_logins_whose_clients_left_give_up_their_place_before_hashing(
    start_server: Callable[..., Server], tmp_path: Path, workers: int
) -> None:
    # One hash at a time (a thread, or the one hashing process two workers share) and a queue of 8
    # per worker, and the slowest profile (~0.4 s a hash): the abandoned logins would hold the
    # queue for seconds after their clients have gone.
    server = start_server(
        "--workers", str(workers), hash_workers="1", hash_queue="8", hash_profile="rfc9106-low-memory"
    )
    port = int(server.base_url.rsplit(":", 1)[1])
    with full_queue(port, 12 * workers):  # 9 places per worker: at least one worker refuses some
        pass
    # Their clients are gone: a new client finds a place at once.
    # The workers hear of the closes within milliseconds, not at once: a new client may find the
    # queue full for that long. Hashing the abandoned ones would keep it full for seconds (9 hashes
    # of ~0.4 s each per worker), so a second of retries still tells the two apart.
    deadline = time.monotonic() + 1.0
    while True:
        response = httpx.post(
            server.base_url + "/login", json={"email": "new@example.com", "password": PASSWORD}, timeout=20
        )
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status_code == 401, server.explain(response.text)
    server.stop()  # finishes what runs and writes the audit trail
    # The new client's failure, and at most the abandoned login whose hash had begun when it left.
    assert failed_logins(tmp_path / "e2e-0.db") <= 2, server.explain()
