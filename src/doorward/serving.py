"""``doorward serve --workers N``: uvicorn workers, each accepting on a listening socket of its own.

uvicorn's own ``--workers`` shares one listening socket: whichever worker wakes first accepts every
connection waiting. A client that opens its connections in a burst (a proxy's keep-alive pool, a
load generator) can then find all of them on one worker while the others idle, and the service
runs at a fraction of its capacity for as long as those connections live.

Here each worker gets a socket of its own, all bound to one port with ``SO_REUSEPORT``; the kernel
assigns each new connection to one socket by a hash of its addresses, so connections spread over
the workers whatever their timing. The supervisor binds every socket before any worker starts (a
port already taken fails once, at once) and keeps them open while it runs: a worker that dies is
replaced on the same socket, and connections that reach it meanwhile wait in its queue instead of
being refused.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import threading
from types import FrameType

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Process

logger = logging.getLogger("doorward.serve")

CHECK_SECONDS = 0.5
"""How often the supervisor looks for workers that died."""


class PortInUse(Exception):
    """Another process listens on the address ``doorward serve`` was asked to use."""


def reuse_port_supported() -> bool:
    """Whether the kernel spreads connections over SO_REUSEPORT sockets (Linux does)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port`` in one SO_REUSEPORT group.

    Any process of the same user may join such a group, so the port is first bound once without
    SO_REUSEPORT: if anything listens there already (a doorward left running, say), that fails and
    the port is refused, rather than silently sharing its connections.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"{host}:{port} is already in use") from None
            raise
        port = probe.getsockname()[1]  # port 0: the group takes the port the probe was given
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(backlog)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:  # taken between the probe and the group
            raise PortInUse(f"{host}:{port} is already in use") from None
        raise
    return sockets


class Workers:
    """Runs one uvicorn worker process per socket and replaces a worker that dies.

    SIGINT and SIGTERM stop the server; SIGHUP replaces the workers one at a time (to load new
    code), each new one serving before the old one is told to finish, as uvicorn's own supervisor
    does. A worker that exits with uvicorn's startup-failure code (its application could not start:
    the database is unreachable, the settings are wrong) would fail the same way again, so the
    whole server stops instead, and ``run`` returns False.
    """

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.processes: list[Process] = []
        self.should_exit = threading.Event()
        self.failed = False
        self._restart_asked = False

    def run(self) -> bool:
        """Serve until SIGINT or SIGTERM; True unless a worker failed to start."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            self.processes = [self._start(sock) for sock in self.sockets]
            host, port = self.sockets[0].getsockname()[:2]
            logger.info(
                "serving on %s:%d with %d workers, one listening socket each",
                host,
                port,
                len(self.processes),
            )
            while not self.should_exit.wait(CHECK_SECONDS):
                if self._restart_asked:
                    self._restart_asked = False
                    self._restart_all()
                self._replace_dead()
        finally:
            for process in self.processes:
                process.terminate()
            for process in self.processes:
                process.join()
            for sock in self.sockets:
                sock.close()
        return not self.failed

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only note it: the loop in run() acts, between its other steps.
        if signum == signal.SIGHUP:
            self._restart_asked = True
        else:
            logger.info("received %s: stopping the workers", signal.Signals(signum).name)
            self.should_exit.set()

    def _restart_all(self) -> None:
        logger.info("received SIGHUP: replacing the workers one at a time")
        for index, old in enumerate(self.processes):
            new = self._start(self.sockets[index])
            # Both accept on the socket until the old one is told to finish its requests and go.
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error("worker %s was not ready in time: keeping the others", new.pid)
                return
            old.terminate()
            old.join()
            self.processes[index] = new
            logger.info("worker %s replaces worker %s", new.pid, old.pid)

    def _start(self, sock: socket.socket) -> Process:
        process = Process(self.config, [sock])
        process.start()
        return process

    def _replace_dead(self) -> None:
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # it may be hung rather than gone
            process.join()
            if self.should_exit.is_set():
                return
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker %s failed to start: stopping the server", process.pid)
                self.failed = True
                self.should_exit.set()
                return
            self.processes[index] = self._start(self.sockets[index])
            logger.warning(
                "worker %s ended (exit code %s); worker %s replaces it",
                process.pid,
                process.exitcode,
                self.processes[index].pid,
            )
