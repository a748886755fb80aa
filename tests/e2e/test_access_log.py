"""The access log's cost and its lines, against real ``doorward serve`` processes (issue 21 item 20: with
the access log on, wrk measured 7,005 session checks a second against 10,183 with it off)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.servers import Server

pytestmark = pytest.mark.e2e

CHECKS = 3000


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime: clock ticks of 1/100 s on Linux


def check_cost(server: Server) -> float:
    """The server's CPU seconds for CHECKS session checks over one kept-alive connection.

    The token is a junk one, refused before any database read: the cheaper the check, the larger
    the share of it an access line takes, and the clearer the measure on a busy machine.
    """
    auth = {"Authorization": "Bearer junk"}
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for _ in range(200):  # warm up: the first requests connect and fill caches
            assert http.get("/session", headers=auth).status_code == 401
        before = cpu_seconds(server.process.pid)
        for _ in range(CHECKS):
            http.get("/session", headers=auth)
        return cpu_seconds(server.process.pid) - before


def test_every_access_line_is_written_by_the_time_the_server_stops(
    start_server: Callable[..., Server],
) -> None:
    """The lines go out in batches: none is lost at a stop. (What the line costs is a benchmark's
    figure, not a timed test: benchmarks/run.py --access-log, in benchmarks/README.md.)"""
    logged = start_server(access_log="true")
    check_cost(logged)
    logged.stop()  # its last lines are written at the latest when it stops
    lines = [line for line in logged.stderr().splitlines() if '"uvicorn.access"' in line]
    assert len(lines) >= CHECKS + 200


def test_the_access_line_reads_as_before(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get("/session?token=SECRET-IN-QUERY").status_code == 401
        assert http.get("/healthz").status_code == 200
    server.stop()
    lines = [json.loads(line) for line in server.stderr().splitlines() if '"uvicorn.access"' in line]
    first, second = lines[-2:]  # after the start's health checks
    assert set(first) == set(second) == {"ts", "level", "logger", "event"}, lines
    assert first["level"] == "info"
    client, _, rest = first["event"].partition(" - ")
    host, _, port = client.rpartition(":")
    assert host == "127.0.0.1"
    assert port.isdigit()
    assert rest == '"GET /session?[redacted] HTTP/1.1" 401'
    assert second["event"].endswith(' - "GET /healthz HTTP/1.1" 200')
    assert first["ts"].endswith("+00:00")
    assert len(first["ts"]) == len("2026-11-23T22:18:07.123+00:00")
    assert "SECRET-IN-QUERY" not in server.stderr()
