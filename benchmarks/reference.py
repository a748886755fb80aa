"""The machine's own argon2id limits, with the profile doorward uses: the references of the login figures.

- verify rate with all cores busy: ``cores`` processes, each verifying in a loop for a few seconds,
  all started together; the rate is the sum of theirs.
- one verify's time: one process alone, the median of many verifies.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

import argon2

from doorward.core.profiles import PROFILES

PASSWORD = b"a password long enough to be typical"


def hasher(profile: str) -> argon2.PasswordHasher:
    return PROFILES[profile].argon2id()


def _verify_for(args: tuple[str, float, float]) -> tuple[int, float]:
    """Verify from wall-clock ``start`` until ``start + seconds``; return (verifies, seconds)."""
    profile, start, seconds = args
    h = hasher(profile)
    stored = h.hash(PASSWORD)
    while time.time() < start:
        time.sleep(0.001)
    began = time.perf_counter()
    count = 0
    while time.perf_counter() - began < seconds:
        h.verify(stored, PASSWORD)
        count += 1
    return count, time.perf_counter() - began


def verify_rate(profile: str, processes: int, seconds: float) -> float:
    """Verifies per second of ``processes`` processes running at once."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        start = time.time() + 1.0  # every process has started and hashed once by then
        results = pool.map(_verify_for, [(profile, start, seconds)] * processes, chunksize=1)
    return sum(count / elapsed for count, elapsed in results)


def _one_verify(args: tuple[str, int]) -> list[float]:
    profile, count = args
    h = hasher(profile)
    stored = h.hash(PASSWORD)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        h.verify(stored, PASSWORD)
        times.append(time.perf_counter() - began)
    return times


def verify_time(profile: str, count: int) -> float:
    """Median seconds of one verify in one process, the other cores idle."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return statistics.median(pool.apply(_one_verify, ((profile, count),)))
