"""Server processes for the benchmark: doorward serve and the bare reference, started, awaited, stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from procfs import process_tree

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
