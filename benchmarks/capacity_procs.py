"""What capacity.py runs beside doorward: a pgbouncer in transaction mode, and what it reads off the
machine (the other processes' CPU during a run, Redis's CPU, the tables' bytes per row)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import procfs
from launch import free_port


def pgbouncer_binary() -> str | None:
    """Debian installs it in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return found if os.access(found, os.X_OK) else None


class PgBouncer:
    """pgbouncer in ``pool_mode=transaction`` in front of the PostgreSQL of ``server_url``, with
    ``pool_size`` server connections per database: doorward's deployment behind a pooler."""

    def __init__(self, folder: Path, server_url: str, pool_size: int) -> None:
        self.folder, self.pool_size = folder, pool_size
        host_port = server_url.split("@", 1)[-1].split("/", 1)[0]
        self.server_host, _, port = host_port.partition(":")
        self.server_port = int(port or 5432)
        self.user = server_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0] or "postgres"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, database_url: str) -> str:
        """``database_url`` (a database of the same server) reached through this pgbouncer."""
        scheme, rest = database_url.split("://", 1)
        user, _, tail = rest.partition("@")
        return f"{scheme}://{user}@127.0.0.1:{self.port}/{tail.split('/', 1)[1]}"

    def __enter__(self) -> PgBouncer:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed")
        userlist = self.folder / "userlist.txt"
        userlist.write_text(f'"{self.user}" ""\n', encoding="ascii")
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {userlist}\npool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmax_client_conn = 5000\n",
            encoding="ascii",
        )
        user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
        with (self.folder / "pgbouncer.log").open("wb") as output:
            self.process = subprocess.Popen(
                [binary, *user, str(config)], stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        log = (self.folder / "pgbouncer.log").read_text(errors="replace")
        self.__exit__()
        raise RuntimeError(f"pgbouncer did not start: {log[-500:]}")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def redis_pids() -> list[int]:
    """The local redis-server processes (shared with whoever else uses them)."""
    return [
        int(e.name) for e in os.scandir("/proc") if e.name.isdigit() and _comm(int(e.name)) == "redis-server"
    ]


def cpu_of(pids: list[int]) -> float:
    return sum(procfs.process_cpu(pid) for pid in pids)


def interrupt_cpu() -> float:
    """CPU seconds the machine spent in interrupts (irq + softirq) since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return (values[5] + values[6]) / procfs.CLOCK_TICKS


class OtherProcesses:
    """Every process's CPU at the start of a run, to name afterwards the ones not ours that took most."""

    def __init__(self) -> None:
        self.before = self._all()

    @staticmethod
    def _all() -> dict[int, float]:
        return {int(e.name): procfs.process_cpu(int(e.name)) for e in os.scandir("/proc") if e.name.isdigit()}

    def top(self, ours: set[int], count: int = 6) -> list[dict[str, Any]]:
        """The ``count`` processes not in ``ours`` (nor this runner's, nor the benchmark database's
        backends) that took the most CPU since the start: pid, name, CPU seconds."""
        mine = (
            ours
            | set(procfs.process_tree(os.getpid()))
            | {p for p, r in procfs.postgres_roles().items() if r == "database"}
        )
        after = self._all()
        spent = [(cpu - self.before.get(pid, 0.0), pid) for pid, cpu in after.items() if pid not in mine]
        spent.sort(reverse=True)
        return [
            {
                "pid": pid,
                "name": _comm(pid),
                "cmd": procfs.cmdline(pid)[:80].replace(b"\0", b" ").decode(errors="replace"),
                "cpu_s": round(cpu, 2),
            }
            for cpu, pid in spent[:count]
            if cpu > 0
        ]


def _sql(url: str, statement: str, *args: object) -> Any:
    """One statement straight to the benchmark database (not through pgbouncer); its first value."""

    async def run() -> Any:
        import asyncpg

        conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1], timeout=10)
        try:
            return await conn.fetchval(statement, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def mark_sessions_seen(url: str, ago: str) -> None:
    """Every session last seen ``ago`` (a PostgreSQL interval): "0 seconds" puts off their touches for a
    minute (doorward's touch interval), "2 minutes" makes each due at its next check."""
    _sql(url, "UPDATE sessions SET last_seen_at = now() - $1::text::interval", ago)


def sessions_seen_since(url: str, started: float) -> int:
    """Sessions whose ``last_seen_at`` was written since ``started`` (epoch seconds): the touches."""
    return int(_sql(url, "SELECT count(*) FROM sessions WHERE last_seen_at >= to_timestamp($1)", started))


def table_bytes(url: str) -> dict[str, Any]:
    """Each of doorward's main tables: rows, and bytes on disk with its indexes (the sizing's storage)."""

    async def read() -> dict[str, Any]:
        import asyncpg

        conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1], timeout=10)
        try:
            out = {}
            for table in ("users", "sessions", "audit_events", "attempts", "rate_windows"):
                exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
                if not exists:
                    continue
                rows = await conn.fetchval(f'SELECT count(*) FROM "{table}"')  # noqa: S608 (fixed names)
                size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
                out[table] = {
                    "rows": rows,
                    "bytes": size,
                    "bytes_per_row": round(size / rows) if rows else None,
                }
            return out
        finally:
            await conn.close()

    return asyncio.run(read())
