"""The scrape's side: every worker's files read as one text (multiprocess mode), a dead worker's live
gauges forgotten, and GET /metrics on an address of its own (``AddressServer``)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

_log = logging.getLogger("doorward.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Prometheus text format's Content-Type."""


def forget_process(pid: int, directory: str) -> None:
    """A worker has ended: its live gauges go from the scrape; its counts stay (they happened)."""
    mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def scrape_directory(directory: str) -> bytes:
    """The text format of every process that wrote to ``directory`` (multiprocess mode)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


_NOT_FOUND = b'{"success":false,"error":"Not found","code":"not_found"}'


class AddressServer:
    """GET /metrics on an address of its own (DOORWARD_METRICS_ADDRESS), no token: a thread of the
    supervisor (or of the one process). Any other path is the 404 envelope; a bind failure is an
    OSError at construction."""

    def __init__(self, host: str, port: int, scrape: Callable[[], bytes]) -> None:

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.partition("?")[0] == "/metrics":
                    body, status, kind = scrape(), 200, CONTENT_TYPE
                else:
                    body, status, kind = _NOT_FOUND, 404, "application/json; charset=utf-8"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every 15 s is not worth a log line

        server = _Server6 if ":" in host else _Server
        self._server = server((host, port), Handler)
        self.port: int = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="doorward-metrics", daemon=True).start()
        shown = f"[{host}]" if ":" in host else host
        _log.info("metrics on http://%s:%d/metrics", shown, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a scraper that hangs does not hold up the stop


class _Server6(_Server):
    address_family = socket.AF_INET6
