"""A real HTTP server that serves k-anonymity range files, as api.pwnedpasswords.com/range does.

Started by the test on a free local port (never the internet); it records every request's path and
headers, pads its answers with count-0 lines when asked to, and can be told to answer slowly.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def sha1_hex(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


@dataclass
class RangeServer:
    """The breached passwords it knows (SHA-1 hex -> count) and what it was asked."""

    url: str = ""
    breached: dict[str, int] = field(default_factory=dict)
    padding: list[str] = field(default_factory=list)  # suffixes listed with count 0 when padded
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def add(self, password: str, count: int = 3) -> str:
        digest = sha1_hex(password)
        self.breached[digest] = count
        return digest

    def answer(self, prefix: str, padded: bool) -> str:
        lines = [f"{h[5:]}:{n}" for h, n in self.breached.items() if h[:5] == prefix]
        if padded:
            lines += [f"{suffix}:0" for suffix in self.padding]
        return "\r\n".join(lines)


@pytest.fixture
def range_server() -> Iterator[RangeServer]:
    state = RangeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, dict(self.headers.items())))
            time.sleep(state.delay)
            prefix = self.path.rsplit("/", 1)[-1]
            body = state.answer(prefix, self.headers.get("Add-Padding") == "true").encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a client that timed out has gone: what the timeout tests want

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/range"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
