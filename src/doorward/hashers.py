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
connection: a 4-byte length and a JSON object, answered the same way.

    {"op": "verify", "profile": "owasp-2023", "key": "<hex>", "args": [stored or null, password]}
    {"op": "hash", ...,                                        "args": [password]}
    {"op": "for_import", ...,                                  "args": [stored]}
    -> {"result": ...} or {"error": "<DoorwardError subclass>", "message": "..."}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from doorward.core.errors import DoorwardError, Overloaded, UnrecognisedHash
from doorward.core.hashing import PasswordHasher, Verdict
from doorward.core.hashpool import lower_priority
from doorward.core.passwords import Password
from doorward.core.profiles import PROFILES
from doorward.restarts import Restarts

T = TypeVar("T")

logger = logging.getLogger("doorward.hashers")

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 1 << 20
"""A request or an answer longer than this is refused (a password is at most a few KiB)."""

READ_SECONDS = 5.0
"""How long a hashing process waits for a request to arrive once its connection is accepted."""

PARENT_CHECK_SECONDS = 1.0
"""How often a hashing process waiting for work checks that the server that started it still runs."""

ANSWER_SECONDS = 30.0
"""The longest a worker waits for a hash's answer (queued and computed) before answering 503."""

STARTUP_SECONDS = 30.0
"""How long new hashing processes may take to be ready (at start, and on SIGHUP) before the server
gives up on them: it stops at start, and keeps the old ones on SIGHUP."""

READY = b"ready\n"
"""What a hashing process writes to its stdout, a pipe to the server, once it is about to accept."""

FINISH_SECONDS = 10.0
"""How long a hashing process told to finish may take (its hash, then the check of its flag)."""

_BORN_BLOCKED = {signal.SIGUSR1, signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

_ERRORS: dict[str, type[DoorwardError]] = {"UnrecognisedHash": UnrecognisedHash}
"""The errors a hash may raise that reach the caller as they are; any other is a failure."""


class HashersNotReady(RuntimeError):
    """The hashing processes did not say they were ready in time (their errors are in the log)."""


class HashingFailed(Overloaded):
    """The hashing processes could not be reached or did not answer: 503, as when they are busy."""


# --- the workers' side ---------------------------------------------------------------------------


class ProcessRunner:
    """A HashPool runner (core/hashpool.py) that sends each hash to the hashing processes.

    It runs the methods of one PasswordHasher, ``hasher``: the processes build the same hasher from
    its profile and key.
    """

    OPS = ("verify", "hash", "for_import")

    def __init__(self, path: str, hasher: PasswordHasher) -> None:
        self.path = path
        self._hasher = hasher
        self._header = {"profile": hasher.profile.name, "key": hasher.key.hex()}
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, fn: Callable[..., T], args: tuple[object, ...], done: Callable[[], None]) -> Awaitable[T]:
        name = getattr(fn, "__name__", "")
        if getattr(fn, "__self__", None) is not self._hasher or name not in self.OPS:
            done()
            raise TypeError(f"the hashing processes run {self.OPS} of one PasswordHasher, not {fn!r}")
        task = asyncio.get_running_loop().create_task(self._ask(name, args))
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

    async def _ask(self, op: str, args: tuple[object, ...]) -> Any:
        request = encode({**self._header, "op": op, "args": [_plain(arg) for arg in args]})
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
            logger.error("the hashing processes did not answer: %s", reason)
            raise HashingFailed() from None
        finally:
            if sock is not None:
                sock.close()
        if "error" in answer:
            error = _ERRORS.get(answer["error"])
            if error is None:
                logger.error("a hashing process failed: %s", answer["error"])
                raise HashingFailed()
            raise error(answer.get("message") or error.message)
        result = answer["result"]
        return Verdict(ok=result[0], needs_rehash=result[1]) if op == "verify" else result

    def close(self) -> None:
        """Nothing to stop here: the server stops the processes after its workers."""


def _plain(arg: object) -> object:
    return arg.raw if isinstance(arg, Password) else arg


async def _read_message_async(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> Any:
    buffer = bytearray()
    needed = _LENGTH.size
    while len(buffer) < needed:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            raise ConnectionResetError("the hashing process closed the connection")
        buffer += chunk
        if needed == _LENGTH.size and len(buffer) >= needed:
            needed += _length(bytes(buffer[: _LENGTH.size]))
    return json.loads(buffer[_LENGTH.size : needed])


def encode(message: dict[str, Any]) -> bytes:
    """A message as sent: its length, then its JSON."""
    body = json.dumps(message, separators=(",", ":")).encode()
    return _LENGTH.pack(len(body)) + body


def _length(prefix: bytes) -> int:
    length: int = _LENGTH.unpack(prefix)[0]
    if length > MAX_MESSAGE:
        raise ConnectionResetError(f"a message of {length} bytes")
    return length


# --- the hashing processes -----------------------------------------------------------------------


def serve(listener: socket.socket, parent: int) -> None:
    """Answer hash requests, one at a time, until told to finish or the server is gone.

    SIGUSR1 tells it to finish: the hash it is computing is answered, then it exits. SIGTERM, SIGINT
    and SIGHUP are ignored: they reach the whole process group (Ctrl+C, a service manager stopping
    the server), and the workers still finishing their logins need the hashes. The server stops
    these processes after its workers; if it dies, they notice within PARENT_CHECK_SECONDS.
    """
    finishing = False

    def finish(_signum: int, _frame: object) -> None:
        nonlocal finishing
        finishing = True

    signal.signal(signal.SIGUSR1, finish)
    for ignored in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(ignored, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _BORN_BLOCKED)
    with contextlib.suppress(OSError):  # the server stopped listening for it: no matter
        os.write(sys.stdout.fileno(), READY)
    nowhere = os.open(os.devnull, os.O_WRONLY)  # the pipe is closed; stdout stays a valid descriptor
    os.dup2(nowhere, sys.stdout.fileno())
    os.close(nowhere)
    lower_priority()
    listener.settimeout(PARENT_CHECK_SECONDS)
    hashers: dict[tuple[str, str], PasswordHasher] = {}
    while not finishing and os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(READ_SECONDS)
            try:
                request = _read_message(conn)
            except (OSError, ValueError):
                continue  # the worker went away, or sent what no worker sends
            answer = _answer(request, hashers)
            with contextlib.suppress(OSError):  # the worker went away meanwhile
                conn.sendall(encode(answer))


def _read_message(conn: socket.socket) -> Any:
    prefix = _read_exactly(conn, _LENGTH.size)
    return json.loads(_read_exactly(conn, _length(prefix)))


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = conn.recv(size - len(buffer))
        if not chunk:
            raise ConnectionResetError("closed early")
        buffer += chunk
    return bytes(buffer)


def _answer(request: dict[str, Any], hashers: dict[tuple[str, str], PasswordHasher]) -> dict[str, Any]:
    try:
        profile, key, op, args = request["profile"], request["key"], request["op"], request["args"]
        if op not in ProcessRunner.OPS:
            raise ValueError(f"unknown op {op!r}")
        hasher = hashers.get((profile, key))
        if hasher is None:
            hasher = hashers[(profile, key)] = PasswordHasher(PROFILES[profile], bytes.fromhex(key))
        if op == "verify":
            verdict = hasher.verify(args[0], Password(args[1]))
            return {"result": [verdict.ok, verdict.needs_rehash]}
        if op == "hash":
            return {"result": hasher.hash(Password(args[0]))}
        return {"result": hasher.for_import(args[0])}
    except DoorwardError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # never the request's content: it holds a password
        return {"error": type(exc).__name__}


def main() -> None:
    """``python -m doorward.hashers <fd> <parent pid>``: one hashing process, started by Hashers."""
    fd, parent = int(sys.argv[1]), int(sys.argv[2])
    with socket.socket(fileno=fd) as listener:
        serve(listener, parent)


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
        for index in range(self.count):
            self.processes.append(self._spawn())  # one at a time: stop() ends those started
            self._restarts.started(index, time.monotonic())
        if not self._ready(self.processes):
            raise HashersNotReady()
        logger.info("%d hashing processes serve every worker's hashes", self.count)

    def _spawn(self) -> subprocess.Popen[bytes]:
        """A new process, with its stdout a pipe on which it says when it is ready (see _ready)."""
        fd = self._listener.fileno()
        # Born with these blocked (the mask is inherited) until serve() has set what they do: one
        # told to finish that early finishes all the same, and Ctrl+C or a service manager's
        # SIGTERM to the whole group does not kill one that has just started.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _BORN_BLOCKED)
        try:
            return subprocess.Popen(  # noqa: S603 (this interpreter, our own module, no shell)
                [sys.executable, "-m", "doorward.hashers", str(fd), str(os.getpid())],
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

    def restart(self) -> None:
        """New processes (new code, after SIGHUP) take over; the old ones finish their hash and go."""
        new: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(self.count):
                new.append(self._spawn())
        except OSError as exc:
            self._finish(new)
            logger.error("cannot start new hashing processes, keeping the old ones: %s", exc.strerror or exc)
            return
        if not self._ready(new):
            self._finish(new)
            logger.error("the new hashing processes did not get ready: keeping the old ones")
            return
        old, self.processes = self.processes, new
        for index in range(self.count):
            self._restarts.started(index, time.monotonic())
        self._finish(old)
        logger.info("%d new hashing processes replace the old ones", self.count)

    def stop(self) -> None:
        """Stop the processes (after the workers, whose logins need them) and remove the socket."""
        self._finish(self.processes)
        self._listener.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _ready(self, processes: list[subprocess.Popen[bytes]]) -> bool:
        """Whether each process said it is ready within STARTUP_SECONDS (a new one that cannot
        import doorward, say, exits instead); their pipes are closed either way."""
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            for process in processes:
                assert process.stdout is not None
                readable, _, _ = select.select(
                    [process.stdout], [], [], max(0.0, deadline - time.monotonic())
                )
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


if __name__ == "__main__":
    main()
