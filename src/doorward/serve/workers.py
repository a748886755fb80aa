"""``doorward serve --workers N``: uvicorn workers, each accepting on a listening socket of its own.

uvicorn's own ``--workers`` shares one socket, and whichever worker wakes first accepts every
connection waiting: a burst (a proxy's keep-alive pool, a load generator) can land on one worker
while the others idle, for as long as those connections live. Here the sockets share one port with
``SO_REUSEPORT``, and the kernel spreads new connections over them by a hash of their addresses.
The supervisor binds them all before any worker starts (a port already taken fails at once) and
keeps them open: a worker that dies is replaced on the same socket, and the connections that reach
it meanwhile wait in its queue instead of being refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Process

from doorward.serve.orphans import watch_supervisor
from doorward.serve.restarts import Restarts

logger = logging.getLogger("doorward.serve")

CHECK_SECONDS = 0.5
"""How often the supervisor looks for workers that died and for signals."""

GRACEFUL_SECONDS = 30
"""How long a stopping worker may take to finish its requests (uvicorn's timeout_graceful_shutdown)."""

FIRST_REQUEST_SECONDS = 0.5
"""How long a stopping worker waits for the request of a connection it has accepted but not yet read."""

STARTUP_SECONDS = 30.0
"""How long a replacement started by SIGHUP may take to start serving before the others are kept."""

ABANDON_SECONDS = 10.0
"""How long a replacement given up on (not serving yet: no requests to finish) may take to stop."""


class _Server(Server):
    """uvicorn's Server, but a connection accepted just before a stop gets its request answered.

    uvicorn's shutdown closes every connection with no request in progress, and a connection the
    worker has accepted whose request it has not read yet is one: its client sees the connection
    closed without an answer. While SIGHUP replaces the workers, the one told to finish may have
    just accepted such a connection. So first stop accepting, then wait for those requests, at most
    ``FIRST_REQUEST_SECONDS``, then shut down as uvicorn does (the requests now in progress are
    finished, up to its timeout). A keep-alive connection between two requests is not waited for
    (uvicorn keeps its finished request): it is closed as before, and a request sent on it at that
    moment is lost, as on any server that closes idle connections; clients retry those.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # uvicorn's shutdown closes them again, which does nothing
        await asyncio.sleep(0)  # a connection accepted in this loop pass is registered in the next
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FIRST_REQUEST_SECONDS
        # Polled: uvicorn says nothing when a connection's request begins.
        while loop.time() < deadline and any(  # noqa: ASYNC110
            getattr(connection, "cycle", False) is None for connection in self.server_state.connections
        ):
            await asyncio.sleep(0.01)
        await super().shutdown(sockets)


class _Worker(Process):
    """uvicorn's worker process, running ``_Server``, which stops if its supervisor dies (orphans.py)."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.supervisor = os.getpid()  # set in the supervisor; the worker gets it with the rest
        super().__init__(config, sockets)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # in the worker
        watch_supervisor(self.supervisor, self._stop)
        super().target(sockets)

    def _stop(self) -> None:
        self.server.should_exit = True

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = _Server(config=self.config)
        return self._server


class Workers:
    """Runs one uvicorn worker process per socket and replaces a worker that dies.

    SIGINT and SIGTERM stop the server: each worker finishes its requests (at most
    ``GRACEFUL_SECONDS``, then it is killed). SIGHUP replaces the workers one at a time (to load
    new code), each new one serving before the old one is told to finish, as uvicorn's own
    supervisor does; a stop asked meanwhile ends the replacing, and the workers stop as they are.
    A worker that dies is replaced at once, and again after waits that double up to half a
    minute while its replacements keep dying. If a worker exits with uvicorn's
    startup-failure code before any worker has served (the database is unreachable, the settings
    are wrong), the server stops instead, and ``run`` returns False.
    """

    def __init__(
        self,
        config: Config,
        sockets: list[socket.socket],
        on_check: Callable[[], None] = lambda: None,
        on_reload: Callable[[Callable[[], bool]], None] = lambda _stop_asked: None,
        on_exit: Callable[[int], None] = lambda _pid: None,
    ) -> None:
        self.config = config
        self.on_exit = on_exit  # given each worker's pid once it has ended (the metrics' dead workers)
        self.on_check = on_check  # every CHECK_SECONDS while serving (the hashing processes' check)
        # On SIGHUP, before the workers are replaced; it is given _stop_asked, to give up early.
        self.on_reload = on_reload
        self.sockets = sockets
        self.processes: list[Process] = []
        self.should_exit = threading.Event()  # set by run()'s loop, never by a signal handler
        self.failed = False
        self.served = False  # a worker has finished starting: a startup failure is no longer fatal
        self._signals: list[int] = []
        self._restarts = Restarts(len(sockets))  # one place per socket

    def run(self) -> bool:
        """Serve until SIGINT or SIGTERM; True unless a worker failed to start."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            for index in range(len(self.sockets)):
                self.processes.append(self._start(index))
            host, port = self.sockets[0].getsockname()[:2]
            logger.info("starting %d workers on %s port %d", len(self.sockets), host, port)
            while not self.should_exit.is_set():
                time.sleep(CHECK_SECONDS)
                self._handle_signals()
                if not self.should_exit.is_set():
                    self._replace_dead()
                    self.on_check()
        finally:
            self._stop_all()
        return not self.failed

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only this: the code it interrupts may hold a lock (logging's, an Event's) it would need.
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        """A stop wins over a reload waiting beside it; SIGHUPs that came together make one reload."""
        while self._signals:
            count = len(self._signals)  # a signal that arrives meanwhile is appended after these
            pending = self._signals[:count]
            del self._signals[:count]
            stop = next((signum for signum in pending if signum != signal.SIGHUP), None)
            if stop is not None:
                logger.info("received %s: stopping the workers", signal.Signals(stop).name)
                self.should_exit.set()
                return
            self.on_reload(self._stop_asked)
            self._restart_all()  # which gives up, and says so, if a stop came meanwhile

    def _start(self, index: int) -> Process:
        process = _Worker(self.config, [self.sockets[index]])
        process.start()
        self._restarts.started(index, time.monotonic())
        return process

    def _ended(self, process: Process) -> None:
        if process.pid is not None:
            self.on_exit(process.pid)

    def _stop_asked(self) -> bool:
        """SIGINT or SIGTERM has arrived and waits to be handled."""
        return any(signum != signal.SIGHUP for signum in self._signals)

    def _restart_all(self) -> None:
        logger.info("received SIGHUP: replacing the workers one at a time")
        for index, old in enumerate(self.processes):
            if self._restarts.waiting(index):
                continue  # dead and waiting: its successor starts on the new code anyway
            if self._stop_asked():
                break
            new = self._start(index)
            # Both accept on the socket until the old one is told to finish its requests and go.
            if not self._wait_until_ready(new):
                self._end(new)
                self._ended(new)
                if self._stop_asked():
                    break
                logger.error("worker %s did not start in time: keeping the others as they are", new.pid)
                return
            old.terminate()
            old.join()
            self._ended(old)
            self.processes[index] = new
            logger.info("worker %s replaces worker %s", new.pid, old.pid)
        else:
            return
        # A stop does not wait for the rest of a reload: each worker a new one would have replaced
        # (a second or two to start, each) stops as it is, finishing its requests.
        logger.info("a stop was asked while the workers were being replaced: not replacing the rest")

    @staticmethod
    def _end(process: Process) -> None:
        """End a worker that is not serving yet; one stuck in its startup is killed."""
        process.terminate()
        _join_or_kill(process, time.monotonic() + ABANDON_SECONDS)

    def _wait_until_ready(self, new: Process) -> bool:
        """Whether ``new`` serves within STARTUP_SECONDS; False at once if it dies or a stop is asked."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and not self._stop_asked():
            if not new.process.is_alive():
                return False
            if new.is_ready(timeout=CHECK_SECONDS):
                return True
            time.sleep(0.1)  # it answered that it has not started yet: ask again in a while
        return False

    def _replace_dead(self) -> None:
        check = self.config.timeout_worker_healthcheck
        for index, process in enumerate(self.processes):
            now = time.monotonic()
            if self._restarts.waiting(index):
                if self._restarts.due(index, now):
                    self._replace(index, process)
                continue
            if process.is_alive(timeout=check):  # answers its ping: a thread of its own does
                if not self.served:
                    self.served = process.is_ready(timeout=check)
                else:
                    self._restarts.alive(index, now)
                continue
            if process.exitcode is None:
                process.kill()  # alive but not answering: hung
            process.join()
            self._ended(process)
            if process.exitcode == STARTUP_FAILURE and not self.served:
                logger.error("worker %s failed to start: stopping the server", process.pid)
                self.failed = True
                self.should_exit.set()
                return
            wait = self._restarts.died(index, now)
            logger.warning(
                "worker %s ended (exit code %s); a new one starts in %g s",
                process.pid,
                process.exitcode,
                wait,
            )
            if not wait:
                self._replace(index, process)

    def _replace(self, index: int, dead: Process) -> None:
        self.processes[index] = self._start(index)
        logger.info("worker %s replaces worker %s", self.processes[index].pid, dead.pid)

    def _stop_all(self) -> None:
        for process in self.processes:
            process.terminate()
        deadline = time.monotonic() + GRACEFUL_SECONDS + 5  # uvicorn's own bound, then a margin
        for process in self.processes:
            _join_or_kill(process, deadline)
            self._ended(process)
        for sock in self.sockets:
            sock.close()


def _join_or_kill(process: Process, deadline: float) -> None:
    """Wait for a worker told to stop until ``deadline`` (monotonic), then kill it."""
    process.process.join(max(0.0, deadline - time.monotonic()))
    if process.process.is_alive():
        logger.error("worker %s did not stop in time: killing it", process.pid)
        process.kill()
    process.join()
