"""A worker of ``doorward serve --workers N`` ends soon after its supervisor has died, whatever killed it.

A supervisor killed with SIGKILL (or by the OOM killer) cannot stop its workers: they would live on,
re-parented, keep the port, answer /healthz and refuse every login, since the hashing processes end
with the supervisor. So each worker watches its parent: a thread asks ``os.getppid()`` (POSIX, and
no signal to race with: Linux's PR_SET_PDEATHSIG fires when the *thread* that forked dies) and, once
the parent is another process, stops the worker as a SIGTERM would, and exits after ORPHAN_SECONDS
if its requests are not done by then. multiprocessing's resource tracker ends with the last worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("doorward.serve")

WATCH_SECONDS = 0.25
"""How often a worker asks whether its supervisor still runs."""

ORPHAN_SECONDS = 3.0
"""How long a worker whose supervisor died may take to finish its requests before it exits."""


def watch_supervisor(supervisor: int, stop: Callable[[], None]) -> threading.Thread:
    """A daemon thread that calls ``stop`` once this process's parent is no longer ``supervisor``,
    and ends the process ORPHAN_SECONDS later if it is still running."""

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(WATCH_SECONDS)
        logger.error("the supervisor has gone (process %d): worker %d stops", supervisor, os.getpid())
        stop()
        time.sleep(ORPHAN_SECONDS)
        logger.error(
            "worker %d did not stop within %g s of its supervisor: exiting", os.getpid(), ORPHAN_SECONDS
        )
        logging.shutdown()
        os._exit(1)

    thread = threading.Thread(target=watch, name="doorward-supervisor-watch", daemon=True)
    thread.start()
    return thread
