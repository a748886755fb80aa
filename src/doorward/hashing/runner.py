"""The workers' side of the hashing processes: a HashPool runner that sends each hash to them.

Under ``doorward serve --workers N`` every worker sends its hashes to the hashing processes the
supervisor shares among them (doorward/serve/hash_processes.py), each on a connection of its own to
their Unix socket, in the format of doorward/hashing/wire.py. A hash they cannot answer is a 503,
as when the pool is full.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from doorward.core.errors import DoorwardError, Overloaded, UnrecognisedHash
from doorward.core.outcomes import NoMetrics
from doorward.core.password_hashes import HashOp, PasswordHasher, Verdict
from doorward.core.passwords import Password
from doorward.core.ports import Metrics
from doorward.hashing.wire import BEGUN, PING, PONG, encode, read_message_async

logger = logging.getLogger("doorward.hashers")  # the name its log lines have always carried

ANSWER_SECONDS = 30.0
"""The longest a worker waits for a hash's answer (queued and computed) before answering 503."""

ANSWERED_SECONDS = 5.0
"""A hash answered this recently shows the hashing processes reachable without a ping."""

PING_SECONDS = 2.0
"""How long a health check waits for a hashing process to answer its ping (when no hash did lately)."""

FAILURE_LOG_SECONDS = 1.0
"""After a failed hash is logged, the failures of this many seconds more are logged as one count."""

_ERRORS: dict[str, type[DoorwardError]] = {"UnrecognisedHash": UnrecognisedHash}
"""The errors a hash may raise that reach the caller as they are; any other is a failure."""


class HashingFailed(Overloaded):
    """The hashing processes could not be reached or did not answer: 503, as when they are busy."""


class ProcessRunner:
    """A HashPool runner (core/hashpool.py) that sends each hash to the hashing processes.

    A request names the hasher by its profile and key, from which the processes build the same one.
    Each answer says how long its hash took, which goes to ``metrics``: the hashing processes keep
    no metrics of their own, so they stay as light as they are.
    """

    def __init__(self, path: str, metrics: Metrics | None = None) -> None:
        self.path = path
        self._metrics = metrics or NoMetrics()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unlogged = 0  # failures since the last line, while _summary is due
        self._summary: asyncio.TimerHandle | None = None
        self._answered = -ANSWERED_SECONDS  # time.monotonic() of the last answer from a process

    def start(
        self, hasher: PasswordHasher, op: HashOp, args: tuple[object, ...], done: Callable[[], None]
    ) -> Awaitable[object]:
        request = encode(
            {
                "profile": hasher.profile.name,
                "key": hasher.key.hex(),
                "op": op,
                "args": [_plain(arg) for arg in args],
                "begun": True,  # one byte when a process takes it up: until then it may be given up
            }
        )
        task = asyncio.get_running_loop().create_task(self._ask(request, op, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _ask(self, request: bytes, op: HashOp, done: Callable[[], None]) -> object:
        """The answer to ``request``, in two steps, as a thread pool's queue and its threads.

        Until a process says it has begun, the hash waits in the socket's queue: a caller that
        stops waiting (its client gone, web/disconnects.py) closes the connection, which frees
        its slot at once, and the process that reaches it finds it closed and skips it. Once
        begun, the hash runs to its end whoever waits: it counts against the bound until then.
        """
        try:
            answer = await self._exchange(request, ANSWER_SECONDS, done)
        # Unreachable, gone mid-hash, an answer cut short, or none in time (no process accepts:
        # all dead and not yet replaced): the slot must not stay taken by a login long given up.
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            self._log_failure("the hashing processes did not answer: %s", reason)
            raise HashingFailed() from None
        self._answered = time.monotonic()
        if "error" in answer:
            error = _ERRORS.get(answer["error"])
            if error is None:
                self._log_failure("a hashing process failed: %s", answer["error"])
                raise HashingFailed()
            raise error(answer.get("message") or error.message)
        result = answer["result"]
        seconds = answer.get("seconds")
        if isinstance(seconds, float | int):
            self._metrics.hashed(op, float(seconds))
        return Verdict(ok=result[0], needs_rehash=result[1]) if op == "verify" else result

    async def _exchange(self, request: bytes, seconds: float, done: Callable[[], None]) -> Any:
        """Send ``request`` on a connection of its own and return the answer (OSError, ValueError);
        ``done`` is called once the connection is closed: given up before the process began,
        failed, or answered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout_at(deadline):
                await loop.sock_connect(sock, self.path)
                await loop.sock_sendall(sock, request)
                if await loop.sock_recv(sock, len(BEGUN)) != BEGUN:
                    raise ConnectionResetError("the hashing process closed the connection")
        except BaseException:  # a caller gone (CancelledError) too: the hash never runs
            sock.close()
            done()
            raise

        async def answer() -> Any:
            try:
                async with asyncio.timeout_at(deadline):
                    return await read_message_async(loop, sock)
            finally:
                sock.close()
                done()

        task = loop.create_task(answer())
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that went away must not leave it unseen

    async def reachable(self) -> bool:
        """Whether a hashing process answers: one answered a hash within ANSWERED_SECONDS, or one
        answers a ping within PING_SECONDS. Never a hash: a check must cost the processes next to
        nothing, and under load, when a ping would wait behind the hashes, the hashes tell.

        The socket alone does not tell: the supervisor holds it open, and connections wait in its
        queue while no process is left to accept them (dead, and not replaced yet).
        """
        if time.monotonic() - self._answered < ANSWERED_SECONDS:
            return True
        try:
            answer = await self._exchange(encode(PING), PING_SECONDS, lambda: None)
        except (OSError, ValueError):
            return False
        return bool(answer == PONG)

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
