"""The supervisor's side of the hashing processes every worker of ``doorward serve --workers N`` shares.

With hashing threads in each worker, two logins that land on one worker take turns while another
worker's cores idle. So ``serve`` starts ``hash_workers`` processes (the cores, by default), all
waiting in ``accept`` on one Unix socket; a worker sends each hash there on a connection of its own
(doorward/hashing/runner.py), and the kernel hands it to an idle process or queues it until one is
free. The hashes then run on every core whichever worker asked, and their memory is bounded by the
processes, however many workers there are. The socket lives in a directory only this user may
enter (``tempfile.mkdtemp``: mode 0700), and only the processes ``serve`` starts know its path.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doorward.hashing.process import BORN_BLOCKED, READY
from doorward.serve.restarts import Restarts

logger = logging.getLogger("doorward.hashers")  # the name its log lines have always carried

STARTUP_SECONDS = 30.0
"""How long new hashing processes may take to be ready (at start, and on SIGHUP) before the server
gives up on them: it stops at start, and keeps the old ones on SIGHUP."""

FINISH_SECONDS = 10.0
"""How long a hashing process told to finish may take (its hash, then the check of its flag)."""


class HashersNotReady(RuntimeError):
    """The hashing processes did not say they were ready in time (their errors are in the log)."""


class Hashers:
    """``count`` hashing processes on one socket: started, replaced when they die, and stopped."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._directory = Path(tempfile.mkdtemp(prefix="doorward-hash-"))  # mode 0700
        self.path = str(self._directory / "socket")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(self.path)
            self._listener.listen(socket.SOMAXCONN)
        except OSError:
            self._listener.close()
            shutil.rmtree(self._directory, ignore_errors=True)
            raise
        self.processes: list[subprocess.Popen[bytes]] = []
        self._restarts = Restarts(count)

    def start(self) -> None:
        """Start the processes and wait until they are ready, or raise HashersNotReady."""
        processes = self._start_ready()
        if processes is None:
            raise HashersNotReady()
        self._take(processes)
        logger.info("%d hashing processes serve every worker's hashes", self.count)

    def _start_ready(
        self, give_up: Callable[[], bool] = lambda: False
    ) -> list[subprocess.Popen[bytes]] | None:
        """``count`` new processes, all ready; None (and none left running) if that failed or
        ``give_up`` said so while they started."""
        new: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(self.count):
                new.append(self._spawn())
        except OSError as exc:  # no memory, no processes left
            logger.error("cannot start a hashing process: %s", exc.strerror or exc)
            self._finish(new)
            return None
        if not self._ready(new, give_up):
            self._finish(new)
            return None
        return new

    def _take(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes
        now = time.monotonic()
        for index in range(self.count):
            self._restarts.started(index, now)

    def _spawn(self) -> subprocess.Popen[bytes]:
        """A new process, with its stdout a pipe on which it says when it is ready (see _ready)."""
        fd = self._listener.fileno()
        # Born with these blocked (the mask is inherited) until serve() has set what they do: one
        # told to finish that early finishes all the same, and Ctrl+C or a service manager's
        # SIGTERM to the whole group does not kill one that has just started.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, BORN_BLOCKED)
        try:
            return subprocess.Popen(  # noqa: S603 (this interpreter, our own module, no shell)
                [sys.executable, "-m", "doorward.hashing.process", str(fd), str(os.getpid())],
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def replace_dead(self) -> None:
        """Start a new process in the place of each one that has ended: at once, and after waits
        that double up to half a minute while its successors keep dying (as serve's workers)."""
        now = time.monotonic()
        for index, process in enumerate(self.processes):
            if process.poll() is None:
                self._restarts.alive(index, now)
                continue
            if not self._restarts.waiting(index):
                wait = self._restarts.died(index, now)
                logger.warning(
                    "hashing process %s ended (exit code %s); a new one starts in %g s",
                    process.pid,
                    process.returncode,
                    wait,
                )
            if not self._restarts.due(index, now):
                continue
            try:
                self.processes[index] = self._spawn()
            except OSError as exc:  # no memory, no processes left: try again at the next check
                logger.error("cannot start a hashing process: %s", exc.strerror or exc)
                return
            self._restarts.started(index, now)
            self._close_pipe(self.processes[index])  # not waited for: the next check looks again
            logger.info("hashing process %s replaces %s", self.processes[index].pid, process.pid)

    def restart(self, give_up: Callable[[], bool] = lambda: False) -> None:
        """New processes (new code, after SIGHUP) take over; the old ones finish their hash and go.

        ``give_up`` is asked while the new ones start: True (the server is stopping) keeps the old.
        """
        new = self._start_ready(give_up)
        if new is None:
            if give_up():
                logger.info("a stop was asked: the new hashing processes are not taking over")
            else:
                logger.error("the new hashing processes did not get ready: keeping the old ones")
            return
        old = self.processes
        self._take(new)
        self._finish(old)
        logger.info("%d new hashing processes replace the old ones", self.count)

    def stop(self) -> None:
        """Stop the processes (after the workers, whose logins need them) and remove the socket."""
        self._finish(self.processes)
        self._listener.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _ready(self, processes: list[subprocess.Popen[bytes]], give_up: Callable[[], bool]) -> bool:
        """Whether each process said it is ready within STARTUP_SECONDS (a new one that cannot
        import doorward, say, exits instead) and before ``give_up`` said so; their pipes are
        closed either way."""
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            for process in processes:
                assert process.stdout is not None
                readable: list[Any] = []
                while not readable and not give_up() and (left := deadline - time.monotonic()) > 0:
                    readable, _, _ = select.select([process.stdout], [], [], min(left, 0.1))
                if not readable or process.stdout.readline() != READY:
                    return False
            return True
        finally:
            for process in processes:
                self._close_pipe(process)

    @staticmethod
    def _close_pipe(process: subprocess.Popen[bytes]) -> None:
        if process.stdout is not None:
            process.stdout.close()

    @classmethod
    def _finish(cls, processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            cls._close_pipe(process)
            if process.poll() is None:
                process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + FINISH_SECONDS
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
