"""The HTTP connection itself, over raw sockets against a real ``doorward serve`` (issue 21 items 2-4):
malformed requests, over-large request heads and slow clients all get the JSON envelope, then the
connection is closed."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.rawhttp import (
    assert_envelope,
    connect,
    exchange,
    exchange_keep_alive,
    read_answer,
    read_answer_keep_alive,
)
from tests.servers import Server, launch

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_HEADER_BYTES = 16384  # the default, stated here so the tests build heads of exactly that size
MAX_HEADERS = 100

INVALID = {"success": False, "error": "Invalid request", "code": "invalid_request"}
TOO_LARGE = {"success": False, "error": "Request headers too large", "code": "headers_too_large"}
TIMED_OUT = {"success": False, "error": "Request not received in time", "code": "request_timeout"}


def _settings() -> dict[str, str]:
    return {"header_timeout": str(HEADER_TIMEOUT), "body_timeout": str(BODY_TIMEOUT)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: these tests change nothing in it."""
    started = launch(tmp_path_factory.mktemp("transport"), 0, **_settings())
    yield started
    started.stop()


HOST = b"Host: doorward\r\n"
MALFORMED = {
    "bad chunk size": b"POST /login HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    "chunk size overflow": b"POST /register HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffffffff\r\n",
    "chunk data not ended by CRLF": b"POST /login HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabcXX\r\n",
    "Content-Length with Transfer-Encoding": b"POST /login HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    "negative Content-Length": b"POST /login HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n",
    "Content-Length not a number": b"POST /login HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n",
    "two Content-Lengths": b"POST /login HTTP/1.1\r\n"
    + HOST
    + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "Transfer-Encoding not ending in chunked": b"POST /login HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "control byte in a header": b"GET /session HTTP/1.1\r\n" + HOST + b"Authorization: Bearer a\x01b\r\n\r\n",
    "NUL in a header": b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n",
    "space before a header's colon": b"GET /healthz HTTP/1.1\r\nHost : doorward\r\n\r\n",
    "header line without a colon": b"GET /healthz HTTP/1.1\r\n" + HOST + b"NoColon\r\n\r\n",
    "folded header line": b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-A: a\r\n b\r\n\r\n",
    "invalid method": b"G@T /healthz HTTP/1.1\r\n" + HOST + b"\r\n",
    "bad version": b"GET /healthz HTTP/9.9\r\n" + HOST + b"\r\n",
    "bad minor version": b"GET /healthz HTTP/1.x\r\n" + HOST + b"\r\n",
    "control byte in the path": b"GET /health\x01z HTTP/1.1\r\n" + HOST + b"\r\n",
    "space in the path": b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n",
    "bare LF line ends": b"GET /healthz HTTP/1.1\n" + HOST.replace(b"\r", b"") + b"\n",
    "TLS on the plain port": bytes.fromhex("160301020001000001fc0303") + b"\x00" * 32,
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_the_json_400_and_a_close(server: Server, request_bytes: bytes) -> None:
    assert_envelope(exchange(server, request_bytes), 400, INVALID, server)


def test_a_malformed_request_after_a_good_one_on_the_same_connection(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
        first = read_answer_keep_alive(sock)
        assert first.status == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"X: \x7f\r\n\r\n")
        assert_envelope(read_answer(sock), 400, INVALID, server)


def head_of(size: int, path: bytes = b"/healthz") -> bytes:
    """A GET head of exactly ``size`` bytes, its final blank line included, padded by one header."""
    start = b"GET " + path + b" HTTP/1.1\r\n" + HOST + b"X-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def test_a_head_at_the_size_limit_is_served(server: Server) -> None:
    answer = exchange_keep_alive(server, head_of(MAX_HEADER_BYTES))
    assert answer.status == 200, server.explain(answer)


def test_a_head_one_byte_over_the_limit_gets_431(server: Server) -> None:
    assert_envelope(exchange(server, head_of(MAX_HEADER_BYTES + 1)), 431, TOO_LARGE, server)


def test_a_long_url_counts_toward_the_head(server: Server) -> None:
    request = b"GET /healthz?" + b"q" * MAX_HEADER_BYTES + b" HTTP/1.1\r\n" + HOST + b"\r\n"
    assert_envelope(exchange(server, request), 431, TOO_LARGE, server)


def test_more_headers_than_allowed_get_431(server: Server) -> None:
    many = b"".join(b"X-%d: 1\r\n" % n for n in range(MAX_HEADERS))  # with Host, one too many
    assert_envelope(
        exchange(server, b"GET /healthz HTTP/1.1\r\n" + HOST + many + b"\r\n"), 431, TOO_LARGE, server
    )


def test_as_many_headers_as_allowed_are_served(server: Server) -> None:
    many = b"".join(b"X-%d: 1\r\n" % n for n in range(MAX_HEADERS - 1))
    answer = exchange_keep_alive(server, b"GET /healthz HTTP/1.1\r\n" + HOST + many + b"\r\n")
    assert answer.status == 200, server.explain(answer)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_64_mib_header_is_refused_without_being_read(server: Server) -> None:
    """The issue's attack: one 64 MiB Authorization header took 4.4 s and held /healthz meanwhile."""
    before = rss_kib(server.process.pid)  # one worker: serve is the process that reads the requests
    chunk = b"a" * (1 << 20)
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /session HTTP/1.1\r\n" + HOST + b"Authorization: Bearer ")

        def send_all() -> None:
            with contextlib.suppress(OSError):  # the server closes while we still send
                for _ in range(64):
                    sock.sendall(chunk)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
        sender.join(10)
    assert_envelope(answer, 431, TOO_LARGE, server)
    assert elapsed < 2, elapsed
    grown = rss_kib(server.process.pid) - before
    assert grown < 8 * 1024, f"the worker grew by {grown} KiB"
    healthz = exchange_keep_alive(server, b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
    assert healthz.status == 200


def test_a_head_sent_a_byte_at_a_time_gets_408(server: Server) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Slow: " + b"a" * 100
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if time.monotonic() - started > HEADER_TIMEOUT + 0.5:
                break
            time.sleep(0.05)
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
    assert_envelope(answer, 408, TIMED_OUT, server)
    assert HEADER_TIMEOUT - 0.1 < elapsed < HEADER_TIMEOUT + 1.5, elapsed


def test_a_connection_that_sends_nothing_gets_408(server: Server) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
    assert_envelope(answer, 408, TIMED_OUT, server)
    assert HEADER_TIMEOUT - 0.1 < elapsed < HEADER_TIMEOUT + 1.5, elapsed  # the timeout, not at once


@pytest.mark.parametrize("path", ["/login", "/register"])  # the fast path, and a routed endpoint
def test_a_body_that_trickles_in_gets_408(server: Server, path: str) -> None:
    """Each byte comes well within the timeout, but the body as a whole does not: the limit is overall."""
    body = json.dumps({"email": "ada@example.com", "password": "x" * 40}).encode()
    with connect(server) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: doorward\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.monotonic()
        for byte in body[:40]:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
            if time.monotonic() - started > BODY_TIMEOUT + 0.5:
                break
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
    assert_envelope(answer, 408, TIMED_OUT, server)
    assert elapsed < BODY_TIMEOUT + 1.5, elapsed
    time.sleep(0.2)
    assert "unhandled error" not in server.stderr(), server.explain()  # a client gone is not a bug


def test_keep_alive_waits_between_requests_are_not_the_head_timeout(server: Server) -> None:
    """uvicorn's keep-alive timeout (5 s) bounds the wait for the next request, not the head timeout."""
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
        assert read_answer_keep_alive(sock).status == 200
        time.sleep(HEADER_TIMEOUT + 0.5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
        assert read_answer_keep_alive(sock).status == 200


def test_a_client_that_expects_100_continue_sends_its_body_after_it(server: Server) -> None:
    body = json.dumps({"email": "expect@example.com", "password": "a long enough passphrase 1"}).encode()
    with connect(server) as sock:
        sock.sendall(
            b"POST /register HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = read_answer_keep_alive(sock)
    assert answer.status == 201, server.explain(answer)


def test_a_body_over_the_limit_is_still_413(server: Server) -> None:
    body = b"{" + b" " * 70000 + b"}"
    answer = exchange(
        server,
        b"POST /register HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body,
    )
    assert answer.status == 413, server.explain(answer)
    assert answer.json() == {"success": False, "error": "Request body too large", "code": "payload_too_large"}


def test_several_workers_answer_the_same(tmp_path: Path) -> None:
    """Under --workers N the same protocol runs in every worker (serve/workers.py hands on the config)."""
    server = launch(tmp_path, 0, "--workers", "2", **_settings())
    try:
        for _ in range(4):  # the kernel spreads connections over both workers' sockets
            assert_envelope(exchange(server, MALFORMED["negative Content-Length"]), 400, INVALID, server)
            assert_envelope(exchange(server, head_of(MAX_HEADER_BYTES + 1)), 431, TOO_LARGE, server)
        with connect(server) as sock:
            assert_envelope(read_answer(sock), 408, TIMED_OUT, server)
    finally:
        server.stop()
