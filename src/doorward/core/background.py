"""Work that must not hold up a response: started now, awaited at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

_log = logging.getLogger("doorward")


class Background:
    """Keeps a reference to each task (asyncio only keeps weak ones) and logs what fails."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Start ``work``; its failure is logged, never raised into a request."""
        task = asyncio.get_running_loop().create_task(self._guarded(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except Exception:
            _log.exception("background work failed", extra={"work": name})

    async def drain(self) -> None:
        """Wait for everything started so far (and what it starts in turn)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
