"""Hashing processes that every worker of ``doorward serve --workers N`` shares.

With a pool of hashing threads in each worker, a login waits for its own worker's threads even
while another worker's idle: two logins that land on one worker take turns, and the connections
land where the kernel puts them. So ``serve`` starts ``hash_workers`` processes of their own (the
cores, by default), all waiting in ``accept`` on one Unix socket, and a worker sends each hash
there on a connection of its own: the kernel hands it to one idle hashing process, or queues it
until one is free. The machine's hashes then run on every core whichever worker asked, and their
memory is bounded by the processes, however many workers there are.

The socket lives in a directory only this user may enter (``tempfile.mkdtemp``: mode 0700), and
the processes started by ``serve`` are the only ones that know its path. One request per
connection; the format, and the processes' own code, are in doorward/hashing_process.py, which
imports nothing of this module's (asyncio, logging, subprocess): each process is one per core.

This module is the workers' side (``ProcessRunner``) and the server's (``Hashers``).
"""

from __future__ import annotations

import asyncio
import json
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from doorward.core.errors import DoorwardError, Overloaded, UnrecognisedHash
from doorward.core.hashing import HashOp, PasswordHasher, Verdict
from doorward.core.passwords import Password
from doorward.hashing_process import BORN_BLOCKED, LENGTH, READY, encode, length_of
from doorward.serve.restarts import Restarts

logger = logging.getLogger("doorward.hashers")

ANSWER_SECONDS = 30.0
"""The longest a worker waits for a hash's answer (queued and computed) before answering 503."""

STARTUP_SECONDS = 30.0
"""How long new hashing processes may take to be ready (at start, and on SIGHUP) before the server
gives up on them: it stops at start, and keeps the old ones on SIGHUP."""

FAILURE_LOG_SECONDS = 1.0
"""After a failed hash is logged, the failures of this many seconds more are logged as one count."""

FINISH_SECONDS = 10.0
"""How long a hashing process told to finish may take (its hash, then the check of its flag)."""

_ERRORS: dict[str, type[DoorwardError]] = {"UnrecognisedHash": UnrecognisedHash}
"""The errors a hash may raise that reach the caller as they are; any other is a failure."""


class HashersNotReady(RuntimeError):
    """The hashing processes did not say they were ready in time (their errors are in the log)."""


class HashingFailed(Overloaded):
    """The hashing processes could not be reached or did not answer: 503, as when they are busy."""


# --- the workers' side ---------------------------------------------------------------------------


class ProcessRunner:
    """A HashPool runner (core/hashpool.py) that sends each hash to the hashing processes.

    A request names the hasher by its profile and key, from which the processes build the same one.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unlogged = 0  # failures since the last line, while _summary is due
        self._summary: asyncio.TimerHandle | None = None

    def start(
        self, hasher: PasswordHasher, op: HashOp, args: tuple[object, ...], done: Callable[[], None]
    ) -> Awaitable[object]:
        task = asyncio.get_running_loop().create_task(self._ask(hasher, op, args))
        self._tasks.add(task)

        def finished(task: asyncio.Task[Any]) -> None:
            # Done when the hashing process has answered, not when the caller stops waiting: the
            # hash it has queued runs anyway, and must count against the bound until it ends.
            self._tasks.discard(task)
            done()
            if not task.cancelled():
                task.exception()  # retrieved: a caller that went away must not leave it unseen

        task.add_done_callback(finished)
        return asyncio.shield(task)

    async def _ask(self, hasher: PasswordHasher, op: HashOp, args: tuple[object, ...]) -> object:
        request = encode(
            {
                "profile": hasher.profile.name,
                "key": hasher.key.hex(),
                "op": op,
                "args": [_plain(arg) for arg in args],
            }
        )
        loop = asyncio.get_running_loop()
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(ANSWER_SECONDS):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                await loop.sock_connect(sock, self.path)
                await loop.sock_sendall(sock, request)
                answer = await _read_message_async(loop, sock)
        # Unreachable, gone mid-hash, an answer cut short, or none in time (no process accepts:
        # all dead and not yet replaced): the slot must not stay taken by a login long given up.
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            self._log_failure("the hashing processes did not answer: %s", reason)
            raise HashingFailed() from None
        finally:
            if sock is not None:
                sock.close()
        if "error" in answer:
            error = _ERRORS.get(answer["error"])
            if error is None:
                self._log_failure("a hashing process failed: %s", answer["error"])
                raise HashingFailed()
            raise error(answer.get("message") or error.message)
        result = answer["result"]
        return Verdict(ok=result[0], needs_rehash=result[1]) if op == "verify" else result

    def _log_failure(self, message: str, *args: object) -> None:
        """Log a failed hash; those of the next FAILURE_LOG_SECONDS are summed up in one line.

        With the processes unreachable, every login fails at once: a flood of them must not
        become a flood of identical error lines.
        """
        if self._summary is not None:
            self._unlogged += 1
            return
        logger.error(message, *args)
        self._summary = asyncio.get_running_loop().call_later(FAILURE_LOG_SECONDS, self._summarise)

    def _summarise(self, again: bool = True) -> None:
        self._summary = None
        if self._unlogged:
            logger.error("%d more failed hashes since (not logged one by one)", self._unlogged)
            self._unlogged = 0
            if again:  # failures that go on keep to a line every FAILURE_LOG_SECONDS
                self._summary = asyncio.get_running_loop().call_later(FAILURE_LOG_SECONDS, self._summarise)

    def close(self) -> None:
        """Log the failures not logged yet; the server stops the processes after its workers."""
        if self._summary is not None:
            self._summary.cancel()
            self._summarise(again=False)


def _plain(arg: object) -> object:
    return arg.raw if isinstance(arg, Password) else arg


async def _read_message_async(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> Any:
    buffer = bytearray()
    needed = LENGTH.size
    while len(buffer) < needed:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            raise ConnectionResetError("the hashing process closed the connection")
        buffer += chunk
        if needed == LENGTH.size and len(buffer) >= needed:
            needed += length_of(bytes(buffer[: LENGTH.size]))
    return json.loads(buffer[LENGTH.size : needed])


# --- the server's side ---------------------------------------------------------------------------


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
                [sys.executable, "-m", "doorward.hashing_process", str(fd), str(os.getpid())],
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
