"""Raw HTTP/1.1 over a socket, for the tests of the connection itself (test_transport.py): what a
client library would refuse to send, and the answer as the server wrote it."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.servers import Server

JSON = "application/json; charset=utf-8"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after it

    def json(self) -> object:
        return json.loads(self.body)


def connect(server: Server) -> socket.socket:
    parts = urlsplit(server.base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def read_answer(sock: socket.socket, timeout: float = 10) -> Answer:
    """One HTTP answer from ``sock``, and whether the server then closed the connection."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed without an answer; got {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    closed = False
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        sock.settimeout(2)
        closed = sock.recv(1) == b""
    return Answer(int(status_line.split()[1]), headers, body[:length], closed)


def exchange(server: Server, request: bytes) -> Answer:
    with connect(server) as sock:
        sock.sendall(request)
        return read_answer(sock)


def exchange_keep_alive(server: Server, request: bytes) -> Answer:
    """``exchange`` for an answer after which the connection stays open: read exactly the answer,
    without waiting the two seconds ``read_answer`` gives the server to close."""
    with connect(server) as sock:
        sock.sendall(request)
        return read_answer_keep_alive(sock)


def assert_envelope(answer: Answer, status: int, body: object, server: Server) -> None:
    assert answer.status == status, server.explain(answer)
    assert answer.headers["content-type"] == JSON, answer
    assert answer.headers["cache-control"] == "no-store", answer
    assert answer.headers["x-content-type-options"] == "nosniff", answer
    assert answer.json() == body, answer
    assert answer.closed, answer


def read_answer_keep_alive(sock: socket.socket) -> Answer:
    """An answer on a connection that stays open: read exactly its head and its Content-Length."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    head = data.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    body = b""
    while len(body) < int(headers["content-length"]):
        body += sock.recv(int(headers["content-length"]) - len(body))
    return Answer(int(head[0].split()[1]), headers, body, closed=False)
