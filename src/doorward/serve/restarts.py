"""When a dead process's successor starts: the bookkeeping ``serve``'s workers and its hashing
processes share (workers.py, hash_processes.py)."""

from __future__ import annotations

RESTART_WAITS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Seconds before a dead process's successor starts, by how many died in a row in its place."""

STABLE_SECONDS = 60.0
"""A process that lived this long clears its place's count of deaths in a row."""


class Restarts:
    """For each of ``count`` places: at once after a first death, then after waits that double up
    to half a minute while the successors keep dying, until one lives STABLE_SECONDS."""

    def __init__(self, count: int) -> None:
        self._started = [0.0] * count
        self._deaths = [0] * count
        self._due: dict[int, float] = {}  # place -> when its dead process's successor starts

    def started(self, index: int, now: float) -> None:
        """A process has started in place ``index``."""
        self._started[index] = now
        self._due.pop(index, None)

    def alive(self, index: int, now: float) -> None:
        """The process in place ``index`` was found alive."""
        if now - self._started[index] > STABLE_SECONDS:
            self._deaths[index] = 0

    def died(self, index: int, now: float) -> float:
        """The process in place ``index`` was found dead: how long until its successor starts."""
        wait = RESTART_WAITS[min(self._deaths[index], len(RESTART_WAITS) - 1)]
        self._deaths[index] += 1
        self._due[index] = now + wait
        return wait

    def waiting(self, index: int) -> bool:
        """Place ``index``'s process is dead, its successor not started yet."""
        return index in self._due

    def due(self, index: int, now: float) -> bool:
        """Place ``index``'s successor should start now."""
        return index in self._due and now >= self._due[index]
