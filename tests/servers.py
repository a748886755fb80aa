"""Real ``doorward serve`` processes for end-to-end tests: start, wait until healthy, always stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HASHING_PROCESS = b"doorward.hashing.process"
"""In the command line of each of serve's hashing processes."""


def children_running(pid: int, marker: bytes) -> list[int]:
    """The children of ``pid``'s main thread whose command line holds ``marker``."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):  # ended meanwhile
            if marker in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return sorted(found)


def state(pid: int) -> str:
    """The process's state letter (R, S, Z, ...); OSError when there is no such process."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]  # after the (name)


def ended(pid: int) -> bool:
    """The process has exited (gone, or a zombie its parent has not reaped yet)."""
    try:
        return state(pid) == "Z"
    except OSError:
        return True


def wait_for(condition: Callable[[], bool], seconds: float = 20, every: float = 0.05) -> bool:
    """Whether ``condition()`` became true within ``seconds``, asked every ``every`` seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def doorward_env(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without any DOORWARD_* of the developer's, plus these settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DOORWARD_")}
    env.update(
        DOORWARD_DATABASE_URL=database_url,
        DOORWARD_HASH_PROFILE="testing",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"DOORWARD_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class Server:
    """A running ``doorward serve`` and where its output goes."""

    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    stderr_path: Path
    stopped: bool = field(default=False)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def explain(self, what: object = "") -> str:
        """An assertion message: ``what`` and everything the server wrote to stderr so far."""
        return f"{what}\n--- server stderr ---\n{self.stderr()}"

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL to its process group) and wait for it."""
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # start_new_session=True: the group is the server and its workers, nothing else.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def launch(
    directory: Path,
    index: int,
    *extra_args: str,
    database_url: str | None = None,
    port: int | None = None,
    **settings: str,
) -> Server:
    """Start ``doorward serve`` (by default on a fresh SQLite file in ``directory``) and wait until it is
    healthy; the caller stops it. ``index`` names its files apart from other servers' in ``directory``."""
    # By default a fresh SQLite file of its own, which serve migrates itself.
    database_url = database_url or f"sqlite:///{directory / f'e2e-{index}.db'}"
    env = doorward_env(database_url, **settings)
    port = port or free_port()  # given when a setting must name it (DOORWARD_PUBLIC_URL)
    stderr_path = directory / f"server-{index}.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "doorward", "serve", "--port", str(port), *extra_args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", env, stderr_path)
    try:
        wait_until_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``doorward serve`` on a fresh SQLite file; every server started is stopped at the end."""
    started: list[Server] = []

    def start(
        *extra_args: str, database_url: str | None = None, port: int | None = None, **settings: str
    ) -> Server:
        server = launch(tmp_path, len(started), *extra_args, database_url=database_url, port=port, **settings)
        started.append(server)
        return server

    yield start
    for server in started:  # all at once: a server with workers takes a second or two to stop
        if not server.stopped:
            server.process.terminate()
    for server in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=10)
        server.stop()  # a SIGKILL to the group of one that did not stop


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last: object = None
    with httpx.Client(base_url=server.base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(server.explain(f"server exited with {server.process.returncode}"))
            try:
                response = client.get("/healthz")
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code == 200:
                    return
                last = response
            time.sleep(0.05)
    pytest.fail(server.explain(f"not healthy after {STARTUP_TIMEOUT} s: {last!r}"))


def cli(server: Server, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m doorward *args`` against the server's database."""
    return subprocess.run(
        [sys.executable, "-m", "doorward", *args],
        env=server.env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
