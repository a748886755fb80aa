"""What every benchmark phase shares: where things are, progress lines, statistics of runs, a thread
to run beside a measurement, and what the figures were measured on (the machine, this doorward).

The servers are in launch.py, wrk in wrk.py, the /proc accounting (process trees, RSS, CPU) in procfs.py.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LUA_DIR = HERE / "lua"


def cores() -> int:
    """CPUs this process may run on (what doorward's own defaults count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics -----------------------------------------------------------------------------------


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Median, min and max of several runs, with the runs themselves."""
    runs = list(values)
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}


def total_statuses(runs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Answers per status code, summed over these runs."""
    statuses: dict[str, int] = {}
    for run in runs:
        for code, n in run["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    return dict(sorted(statuses.items()))


def summarise(
    raw: list[dict[str, Any]], set_aside: list[dict[str, Any]], good: tuple[int, ...], connections: int
) -> dict[str, Any]:
    """One figure from its recorded runs (``good``: the statuses counted as served), the runs kept in it."""
    served = [sum(run["statuses"].get(str(c), 0) for c in good) / run["duration_s"] for run in raw]
    # A run that got no answer at all has no percentiles: every request waited at least the whole
    # run, so the run's length stands in for them, as a lower bound (and is flagged).
    unanswered = sum(1 for run in raw if run["requests"] == 0)

    def latency(run: dict[str, Any], key: str) -> float:
        return float(run[key]) if run["requests"] > 0 else run["duration_s"] * 1000

    return {
        "connections": connections,
        "served_per_s": spread(served),
        "req_per_s": spread(run["req_per_s"] for run in raw),
        "p50_ms": spread(latency(run, "p50_ms") for run in raw),
        "p99_ms": spread(latency(run, "p99_ms") for run in raw),
        "unanswered_runs": unanswered,
        "statuses": total_statuses(raw),
        "errors": sum(sum(run["errors"].values()) - run["errors"]["status"] for run in raw),
        "foreign_share_max": max(run["cpu"]["foreign_share"] for run in raw),
        "runs": raw,
        "set_aside_runs": set_aside,
    }


# --- beside a measurement -------------------------------------------------------------------------


def in_background(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``fn`` in a thread; the returned function waits for it and gives its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return join


# --- what was measured ----------------------------------------------------------------------------


def doorward_source() -> dict[str, Any]:
    """Which doorward the servers run: where it is imported from, and its git commit if it has one."""
    import doorward

    package = Path(doorward.__file__).resolve().parent
    info: dict[str, Any] = {"path": str(package), "version": getattr(doorward, "__version__", "")}
    repo = package.parent.parent
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode == 0:
        info["commit"] = head.stdout.strip()
        # Read-only: compares the files with HEAD without touching the index.
        diff = subprocess.run(
            ["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--", "src"], capture_output=True, check=False
        )
        info["uncommitted_changes_in_src"] = diff.returncode != 0
    return info


# --- the machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    mhz = None
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            if key.strip() == "cpu MHz" and mhz is None:
                mhz = float(value)
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    wrk_path = shutil.which("wrk")
    wrk_version = ""
    if wrk_path:
        out = subprocess.run([wrk_path, "--version"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""
    return {
        "nproc": cores(),
        "cpu_model": model,
        "cpu_mhz": mhz,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
    }
