"""Whose work is on the machine, read from /proc: process trees, their RSS, and CPU accounting.

The machine may be shared: every run counts the CPU that went to processes not ours, so a figure
measured while others were busy can be set aside.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterable

from harness import log

PAGE_SIZE = resource.getpagesize()


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

ROLES = ("supervisor", "workers", "hashing", "database", "database_aux", "generator", "runner")
"""Whose CPU a run counts, by what the process does: the server's supervisor, its workers and hashing
processes; PostgreSQL's backends of the benchmark database, and its auxiliary processes (WAL writer,
checkpointer...: the writes' deferred cost, shared with anyone else's database on that server); the
load generator (wrk, flowload.py: the runner's children, alive or reaped); the runner itself with its
other children (a server that is not the one measured, such as the bare app between its runs)."""


def cmdline(pid: int) -> bytes:
    """A process's command line, NUL-separated (empty if it has gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def is_generator(line: bytes) -> bool:
    """Whether a command line is a load generator's: wrk, or flowload.py."""
    args = line.split(b"\0")
    return os.path.basename(args[0]) == b"wrk" or any(a.endswith(b"flowload.py") for a in args[1:2])


def postgres_roles() -> dict[int, str]:
    """The local PostgreSQL processes working for the benchmark, each "database" (a backend of the
    benchmark's database: doorward's connections) or "database_aux" (the server's own processes);
    not the backends of anyone else's database."""
    if POSTGRES_DATABASE is None:
        return {}
    name = POSTGRES_DATABASE.encode()
    found: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            line = cmdline(int(entry.name))
            if not line.startswith(b"postgres"):
                continue
            if name in line.split():
                found[int(entry.name)] = "database"
            elif any(aux in line for aux in _POSTGRES_AUXILIARY):
                found[int(entry.name)] = "database_aux"
    return found


def server_roles(root: int) -> dict[int, str]:
    """A ``doorward serve`` (or uvicorn) tree by role: its hashing processes (``-m
    doorward.hashing.process``), its workers (multiprocessing's ``spawn_main``), the rest supervisor."""
    roles: dict[int, str] = {}
    for pid in process_tree(root):
        line = cmdline(pid)
        if b"doorward.hashing.process" in line:
            roles[pid] = "hashing"
        elif b"spawn_main" in line and pid != root:
            roles[pid] = "workers"
        else:
            roles[pid] = "supervisor"
    return roles


class CpuMeter:
    """Where the machine's CPU went during a run: ours (servers, wrk, PostgreSQL, this runner) or not,
    and ours by role (``ROLES``), from ``/proc/<pid>/stat`` before and after.

    The machine may be shared; "foreign" is the CPU that other processes took meanwhile, which the
    figures of that run did not get. A process that ends during the run loses its CPU to the count,
    but for the runner's own children (wrk, the flow generator), whose CPU comes back when reaped.
    """

    def __init__(self, roots: Iterable[int]) -> None:
        self.servers = list(roots)
        self.roots = [*self.servers, os.getpid()]  # this runner and its children (wrk) are ours too

    def _ours(self) -> dict[int, tuple[str, float]]:
        roles: dict[int, str] = {}
        for pid in process_tree(os.getpid()):
            roles[pid] = "generator" if pid != os.getpid() and is_generator(cmdline(pid)) else "runner"
        for root in self.servers:
            roles.update(server_roles(root))
        roles.update(postgres_roles())
        return {pid: (role, process_cpu(pid)) for pid, role in roles.items()}

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
        by_role = dict.fromkeys(ROLES, 0.0)
        self.by_pid: dict[int, tuple[str, float]] = {}  # each process alive at the end: role, CPU s
        # Processes alive at the end: their CPU since the start (all of it for those started since).
        for pid, (role, cpu) in ours1.items():
            self.by_pid[pid] = role, max(0.0, cpu - self._ours0.get(pid, (role, 0.0))[1])
            by_role[role] += self.by_pid[pid][1]
        # Children that ended meanwhile (wrk runs): what they used, once reaped.
        by_role["generator"] += (children1.ru_utime + children1.ru_stime) - (
            self._children0.ru_utime + self._children0.ru_stime
        )
        busy = machine1[1] - self._machine0[1]
        capacity = machine1[0] - self._machine0[0]
        ours = sum(by_role.values())
        self.result = {
            "wall_s": round(wall, 2),
            "machine_busy_share": round(busy / capacity, 3) if capacity else 0.0,
            "ours_cpu_s": round(ours, 2),
            "foreign_cpu_s": round(max(0.0, busy - ours), 2),
            "foreign_share": round(max(0.0, busy - ours) / capacity, 3) if capacity else 0.0,
            "by_role_s": {role: round(seconds, 3) for role, seconds in by_role.items()},
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
