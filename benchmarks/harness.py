"""What every benchmark phase stands on: server processes, wrk runs, RSS sampling, statistics."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LUA_DIR = HERE / "lua"
PAGE_SIZE = resource.getpagesize()
STARTUP_TIMEOUT = 60.0


def cores() -> int:
    """CPUs this process may run on (what doorward's own defaults count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics -----------------------------------------------------------------------------------


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Median, min and max of several runs, with the runs themselves."""
    runs = list(values)
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}


# --- processes ------------------------------------------------------------------------------------


def children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields start after the last ')'.
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    tree = children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss_bytes(root: int) -> int:
    """RSS summed over ``root``'s process tree."""
    return sum(rss_bytes(pid) for pid in process_tree(root))


class RssSampler:
    """Samples a process tree's summed RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids = process_tree(self.root)
        last_scan = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - last_scan > 1.0:  # workers may be replaced: rescan the tree now and then
                pids, last_scan = process_tree(self.root), time.monotonic()
            self.peak = max(self.peak, sum(rss_bytes(pid) for pid in pids))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Server:
    """A server process (and its workers) started in a session of its own, output to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    health_path: str = "/healthz"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        argv = [part.replace("{port}", str(self.port)) for part in self.argv]
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        self._wait_for_workers()
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not healthy after {STARTUP_TIMEOUT:.0f} s; see {self.log_path}")

    def _wait_for_workers(self) -> None:
        """One worker answering is not all of them: wait until the tree stops growing, then a little."""
        assert self.process is not None
        previous, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 1.0:
            count = len(process_tree(self.process.pid))
            if count != previous:
                previous, stable_since = count, time.monotonic()
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's spawned workers, or the server itself alone."""
        workers = []
        for pid in process_tree(self.pid)[1:]:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if b"spawn_main" in handle.read():
                        workers.append(pid)
            except OSError:
                continue
        return sorted(workers) or [self.pid]

    def stop(self) -> None:
        """SIGTERM the supervisor, then SIGKILL the whole session group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def doorward_env(database_url: str, **settings: str) -> dict[str, str]:
    """This environment without the developer's DOORWARD_* variables, plus these settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DOORWARD_")}
    env.update(DOORWARD_DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    env.update({f"DOORWARD_{name.upper()}": value for name, value in settings.items()})
    return env


def doorward_command() -> list[str]:
    """``doorward`` of this interpreter's environment."""
    return [sys.executable, "-m", "doorward"]


# --- whose CPU -----------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(all CPU seconds, busy CPU seconds) of the machine since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return sum(values) / CLOCK_TICKS, (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


POSTGRES_DATABASE: str | None = None
"""The database being benchmarked on the local PostgreSQL, if any: its backends' CPU is ours."""

_POSTGRES_AUXILIARY = (b"checkpointer", b"background writer", b"walwriter", b"autovacuum", b"stats")


def postgres_pids() -> list[int]:
    """The local PostgreSQL processes working for the benchmark: the server's own auxiliary processes
    and the backends of the benchmark's database (not those of anyone else's)."""
    if POSTGRES_DATABASE is None:
        return []
    name = POSTGRES_DATABASE.encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    cmdline = handle.read()
            except OSError:
                continue
            if cmdline.startswith(b"postgres") and (
                name in cmdline.split() or any(aux in cmdline for aux in _POSTGRES_AUXILIARY)
            ):
                found.append(int(entry.name))
    return found


class CpuMeter:
    """Where the machine's CPU went during a run: ours (servers, wrk, PostgreSQL, this runner) or not.

    The machine may be shared; "foreign" is the CPU that other processes took meanwhile, which the
    figures of that run did not get.
    """

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = [*roots, os.getpid()]  # this runner and its children (wrk) are ours too

    def _ours(self) -> dict[int, float]:
        pids = {pid for root in self.roots for pid in process_tree(root)} | set(postgres_pids())
        return {pid: process_cpu(pid) for pid in pids}

    def __enter__(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._machine0 = machine_cpu()
        self._ours0 = self._ours()
        self._children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *_: object) -> None:
        ours1 = self._ours()
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine1 = machine_cpu()
        wall = time.monotonic() - self._t0
        # Processes alive at the end: their CPU since the start (all of it for those started since).
        alive = sum(t - self._ours0.get(pid, 0.0) for pid, t in ours1.items())
        # Children that ended meanwhile (wrk runs): what they used, once reaped.
        reaped = (children1.ru_utime + children1.ru_stime) - (
            self._children0.ru_utime + self._children0.ru_stime
        )
        busy = machine1[1] - self._machine0[1]
        capacity = machine1[0] - self._machine0[0]
        ours = alive + reaped
        self.result = {
            "wall_s": round(wall, 2),
            "machine_busy_share": round(busy / capacity, 3) if capacity else 0.0,
            "ours_cpu_s": round(ours, 2),
            "foreign_cpu_s": round(max(0.0, busy - ours), 2),
            "foreign_share": round(max(0.0, busy - ours) / capacity, 3) if capacity else 0.0,
        }


def wait_until_quiet(limit: float, threshold: float = 0.10) -> float:
    """Wait (at most ``limit`` s) until the machine is under ``threshold`` busy for a second.

    Called when none of our servers is under load, so what it sees is other people's work.
    Returns the seconds waited.
    """
    started = time.monotonic()
    while True:
        total0, busy0 = machine_cpu()
        time.sleep(1.0)
        total1, busy1 = machine_cpu()
        share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        waited = time.monotonic() - started
        if share < threshold or waited >= limit:
            if waited > 1.5:
                log(f"  waited {waited:.0f} s for other work on the machine (now {share:.0%} busy)")
            return waited


# --- connections ----------------------------------------------------------------------------------


def connections_per_worker(server: Server) -> list[int]:
    """How many established TCP connections each worker of ``server`` holds on its port."""
    inodes: set[str] = set()
    port_hex = f"{server.port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[1].endswith(":" + port_hex) and fields[3] == "01":
                        inodes.add(fields[9])
        except OSError:
            continue
    counts = []
    for pid in server.worker_pids():
        count = 0
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    count += 1
        except OSError:
            continue
        counts.append(count)
    return counts


# --- wrk ------------------------------------------------------------------------------------------


def require_wrk() -> str:
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
        }


def wrk(
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
        require_wrk(),
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
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
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
    )


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
