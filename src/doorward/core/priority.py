"""Hashing runs at a lower priority than the event loop, wherever it runs."""

from __future__ import annotations

import contextlib
import os

HASH_NICENESS = 10
"""How much lower than the event loop the hashing threads run (Linux nice values are per thread).

Hashing is meant to use every idle cycle, but never at the expense of the event loop: with the
hashes niced, a session check or a 503 is answered at once even while every core hashes."""


def lower_priority() -> None:
    """Lower this thread's priority (this process's, in a single-threaded one) by HASH_NICENESS."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: run as is
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + HASH_NICENESS)
