"""CPU per ``GET /session`` inside one process, the ASGI app called directly: metrics off against on.

No HTTP server and no load generator, so a busy machine moves it less than figure 3: each arm runs
in a fresh process (metrics on means multiprocess mode, as under ``serve --workers N``), the arms
alternate, and each reports the best of several rounds of process CPU time per check.

    .venv/bin/python benchmarks/check_cost.py --pairs 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EMAIL = "bench@example.com"
PASSWORD = "correct horse battery staple"


async def measure(metrics: bool, checks: int, rounds: int) -> float:
    """Seconds of this process's CPU per session check, the best of ``rounds``."""
    import httpx

    from doorward.config import Settings
    from doorward.storage import upgrade
    from doorward.web import create_app

    folder = Path(tempfile.mkdtemp(prefix="doorward-cost-"))
    try:
        url = f"sqlite:///{folder / 'cost.db'}"
        await asyncio.to_thread(upgrade, url)
        options: dict[str, Any] = {"database_url": url, "hash_profile": "testing", "access_log": False}
        if metrics:
            options["metrics_token"] = "cost-metrics-token-0123456789"
        app = create_app(Settings(**options))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cost") as client:
                await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
                login = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
                token = login.json()["sessionToken"]
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/session",
                "raw_path": b"/session",
                "query_string": b"",
                "headers": [(b"authorization", f"Bearer {token}".encode()), (b"host", b"cost")],
                "client": ("127.0.0.1", 40000),
                "server": ("cost", 80),
                "scheme": "http",
                "http_version": "1.1",
                "root_path": "",
                "asgi": {"version": "3.0"},
            }
            statuses: list[int] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            best = float("inf")
            for _ in range(rounds + 1):  # the first warms up
                began = time.process_time()
                for _ in range(checks):
                    await app(dict(scope), receive, send)  # type: ignore[arg-type]
                best = min(best, (time.process_time() - began) / checks)
            if set(statuses) != {200}:
                raise RuntimeError(f"the checks answered {sorted(set(statuses))}")
            return best
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def arm(metrics: bool, checks: int, rounds: int) -> float:
    """One arm in a process of its own: multiprocess mode must be chosen before prometheus_client loads."""
    env = dict(os.environ)
    directory = tempfile.mkdtemp(prefix="doorward-cost-metrics-")
    if metrics:
        env["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        argv = [sys.executable, __file__, "--child", "on" if metrics else "off"]
        argv += ["--checks", str(checks), "--rounds", str(rounds)]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=600)
        return float(done.stdout.split()[-1])
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="off/on pairs, alternating")
    parser.add_argument("--checks", type=int, default=3000, help="checks per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per arm (the best counts)")
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(asyncio.run(measure(args.child == "on", args.checks, args.rounds)))
        return
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.pairs):
        off.append(arm(False, args.checks, args.rounds))
        on.append(arm(True, args.checks, args.rounds))
    for name, values in (("metrics off", off), ("metrics on", on)):
        shown = ", ".join(f"{v * 1e6:.1f}" for v in values)
        print(f"{name:12} µs of CPU per check: median {statistics.median(values) * 1e6:.1f} ({shown})")
    print(f"on / off: {statistics.median(on) / statistics.median(off):.3f}")


if __name__ == "__main__":
    main()
