"""A bounded pool for password hashing: it never blocks the event loop and never queues without end."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from doorward.core.errors import Overloaded
from doorward.core.outcomes import NoMetrics
from doorward.core.password_hashes import HashOp, PasswordHasher, Verdict
from doorward.core.passwords import Password
from doorward.core.ports import Metrics, Runner
from doorward.core.priority import lower_priority


class ThreadRunner:
    """Hashes on ``workers`` threads of this process, niced below the event loop; each hash's time
    goes to ``metrics``."""

    def __init__(self, workers: int, metrics: Metrics | None = None) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="doorward-hash", initializer=lower_priority
        )
        self._metrics = metrics or NoMetrics()

    def start(
        self, hasher: PasswordHasher, op: HashOp, args: tuple[object, ...], done: Callable[[], None]
    ) -> Awaitable[object]:
        def job() -> object:
            # Done when the hash finishes, not when the caller stops waiting: a cancelled request
            # must not let more hashes run than the bound allows.
            try:
                method: Callable[..., object] = getattr(hasher, op)
                began = time.perf_counter()
                result = method(*args)
                self._metrics.hashed(op, time.perf_counter() - began)
                return result
            finally:
                done()

        try:
            future = self._executor.submit(job)
        except BaseException:
            done()
            raise
        # A caller cancelled while its hash still waits in the queue cancels the job (wrap_future
        # does): it never runs, so its finally never calls done. Call it here instead.
        future.add_done_callback(lambda finished: done() if finished.cancelled() else None)
        return asyncio.wrap_future(future)

    async def reachable(self) -> bool:
        """Always: the threads are this process's own."""
        return True

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class HashPool:
    """Runs ``hasher``'s blocking methods, at most ``capacity`` calls at once running or waiting.

    Beyond that, a call raises Overloaded at once: a 503 now beats a 200 after the client has given
    up (ASVS 15.2.2). By default ``workers`` threads hash, ``queue`` more calls wait; argon2-cffi
    releases the GIL, so the threads run in parallel, and memory stays bounded by ``workers`` x the
    profile's memory cost. Another ``runner`` may hash elsewhere under the same bound, with a hasher
    rebuilt from ``hasher``'s profile and key: what a subclass of PasswordHasher changes holds on
    threads only. ``metrics`` hears of the slots taken (the default runner, of each hash's time).
    """

    def __init__(
        self,
        hasher: PasswordHasher,
        workers: int,
        queue: int,
        runner: Runner | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.capacity = workers + queue
        self.hasher = hasher
        self._workers = workers
        self._metrics = metrics or NoMetrics()
        self._runner: Runner = runner or ThreadRunner(workers, self._metrics)
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Hash calls running or waiting now."""
        return self._pending

    @property
    def full(self) -> bool:
        """Every slot is taken: ``slot()`` and the calls below would raise Overloaded now."""
        return self._pending >= self.capacity

    async def verify(self, stored: str | None, password: Password) -> Verdict:
        """``PasswordHasher.verify`` off the event loop, or Overloaded when every slot is taken."""
        with self.slot() as slot:
            return await slot.verify(stored, password)

    async def hash(self, password: Password) -> str:
        """``PasswordHasher.hash`` off the event loop, or Overloaded when every slot is taken."""
        with self.slot() as slot:
            return await slot.hash(password)

    async def for_import(self, stored: str) -> str:
        """``PasswordHasher.for_import`` off the event loop, or Overloaded when every slot is taken."""
        with self.slot() as slot:
            return await slot.for_import(stored)

    def slot(self) -> Slot:
        """Take a slot now, or raise Overloaded at once, for one hash to run later.

        Use it as ``with pool.slot() as slot: ... await slot.verify(stored, password)``, and take
        it before the work the hash depends on (a login's throttle and account reads): a full pool
        then refuses a request before it has cost a database query. A slot whose hash never ran is
        given back when the block ends; one whose hash ran, when the hash finishes.
        """
        with self._lock:
            if self.full:
                raise Overloaded()
            self._pending += 1
            self._report()
        return Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1
            self._report()

    def _report(self) -> None:
        # Under the lock: hash threads release concurrently, and the last count must be the last set.
        busy = min(self._pending, self._workers)
        self._metrics.hash_slots(busy, self._pending - busy)

    def _start(self, op: HashOp, args: tuple[object, ...]) -> Awaitable[object]:
        return self._runner.start(self.hasher, op, args, self._release)

    async def reachable(self) -> bool:
        """Whether the runner can hash now (hashing processes may be gone), without hashing."""
        return await self._runner.reachable()

    def close(self) -> None:
        """Finish running hashes and stop the runner."""
        self._runner.close()


class Slot:
    """A place in a HashPool taken ahead of time (``HashPool.slot``): it runs one hash."""

    def __init__(self, pool: HashPool) -> None:
        self._pool = pool
        self.used = False

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_exc: object) -> None:
        if not self.used:
            self.used = True
            self._pool._release()

    async def verify(self, stored: str | None, password: Password) -> Verdict:
        """``PasswordHasher.verify`` off the event loop, in this slot."""
        return cast(Verdict, await self._run("verify", stored, password))

    async def hash(self, password: Password) -> str:
        """``PasswordHasher.hash`` off the event loop, in this slot."""
        return cast(str, await self._run("hash", password))

    async def for_import(self, stored: str) -> str:
        """``PasswordHasher.for_import`` off the event loop, in this slot."""
        return cast(str, await self._run("for_import", stored))

    async def _run(self, op: HashOp, *args: object) -> object:
        if self.used:
            raise RuntimeError("a slot runs one hash")
        self.used = True
        return await self._pool._start(op, args)
