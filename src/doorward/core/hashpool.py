"""A bounded pool for password hashing: it never blocks the event loop and never queues without end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from doorward.core.errors import Overloaded

T = TypeVar("T")

HASH_NICENESS = 10
"""How much lower than the event loop the hashing threads run (Linux nice values are per thread).

Hashing is meant to use every idle cycle, but never at the expense of the event loop: with the
hashes niced, a session check or a 503 is answered at once even while every core hashes."""


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: run as is
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + HASH_NICENESS)


class HashPool:
    """Runs blocking hash calls on ``workers`` threads with at most ``queue`` more waiting.

    Beyond that, ``run`` raises Overloaded at once: answering 503 now is better than answering 200
    after the client has given up (ASVS 15.2.2). argon2-cffi releases the GIL while hashing, so the
    threads run in parallel. Memory stays bounded by ``workers`` x the profile's memory cost.
    """

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="doorward-hash", initializer=_lower_priority
        )
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Hash calls running or waiting now."""
        return self._pending

    @property
    def full(self) -> bool:
        """Every slot is taken: ``slot()`` and ``run()`` would raise Overloaded now."""
        return self._pending >= self.capacity

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on a hashing thread, or raise Overloaded when every slot is taken."""
        with self.slot() as slot:
            return await slot.run(fn, *args)

    def slot(self) -> Slot:
        """Take a slot now, or raise Overloaded at once, for one hash to run later.

        Use it as ``with pool.slot() as slot: ... await slot.run(fn, *args)``, and take it before
        the work the hash depends on (a login's throttle and account reads): a full pool then
        refuses a request before it has cost a database query. A slot whose hash never ran is
        given back when the block ends; one whose hash ran, when the hash finishes.
        """
        with self._lock:
            if self.full:
                raise Overloaded()
            self._pending += 1
        return Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    async def _submit(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        def job() -> T:
            # The slot is released when the hash finishes, not when the caller stops waiting:
            # a cancelled request must not let more hashes run than the bound allows.
            try:
                return fn(*args)
            finally:
                self._release()

        try:
            future = self._executor.submit(job)
        except BaseException:
            self._release()
            raise
        # A caller cancelled while its hash still waits in the queue cancels the job (wrap_future
        # does): it never runs, so its finally never releases. Release it here instead.
        future.add_done_callback(lambda done: self._release() if done.cancelled() else None)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Finish running hashes and stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)


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

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on a hashing thread in this slot."""
        if self.used:
            raise RuntimeError("a slot runs one hash")
        self.used = True
        return await self._pool._submit(fn, args)
