"""wrk, the HTTP load generator, run with one of the Lua scripts of benchmarks/lua; its figures parsed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness import LUA_DIR


def require() -> str:
    """The wrk executable, or exit with one clear line."""
    found = shutil.which("wrk")
    if found is None:
        sys.exit("error: wrk (the HTTP load generator) is not installed: apt-get install wrk (Debian/Ubuntu)")
    return found


@dataclass(frozen=True)
class WrkResult:
    """One wrk run, as common.lua reports it."""

    connections: int
    duration_s: float
    requests: int
    rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    errors: dict[str, int]
    exhausted: bool = False  # flowload.py: it ran out of mfaTokens before the end

    def count(self, *codes: int) -> int:
        return sum(self.statuses.get(str(code), 0) for code in codes)

    def rate_of(self, *codes: int) -> float:
        """Responses per second with one of these status codes."""
        return self.count(*codes) / self.duration_s

    def as_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "req_per_s": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "statuses": self.statuses,
            "errors": self.errors,
        } | ({"exhausted": True} if self.exhausted else {})


def run(
    url: str,
    script: str,
    *,
    connections: int,
    duration: float,
    threads: int = 1,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> WrkResult:
    """Run wrk with one of the Lua scripts of benchmarks/lua and return its figures."""
    argv = [
        require(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout:g}s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    run_env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), **(env or {})}
    done = subprocess.run(
        argv, env=run_env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    return parse(done, connections)


def parse(done: subprocess.CompletedProcess[str], connections: int) -> WrkResult:
    """The figures of a finished generator run that printed ``BENCH_JSON {...}`` (lua/common.lua's)."""
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"the load generator failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return WrkResult(
        connections=connections,
        duration_s=seconds,
        requests=data["requests"],
        rate=data["requests"] / seconds,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        statuses=dict(sorted(data["statuses"].items())),
        errors=data["errors"],
        exhausted=bool(data.get("exhausted", False)),
    )
