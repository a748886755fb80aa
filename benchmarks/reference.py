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


def _verify_for(args: tuple[str, float, float]) -> tuple[int, float, float]:
    """Verify from wall-clock ``start`` until ``start + seconds``; return (verifies, seconds, CPU seconds)."""
    profile, start, seconds = args
    h = hasher(profile)
    stored = h.hash(PASSWORD)
    while time.time() < start:
        time.sleep(0.001)
    began, cpu = time.perf_counter(), time.process_time()
    count = 0
    while time.perf_counter() - began < seconds:
        h.verify(stored, PASSWORD)
        count += 1
    return count, time.perf_counter() - began, time.process_time() - cpu


def verify_load(profile: str, processes: int, seconds: float) -> tuple[float, float]:
    """Verifies per second of ``processes`` processes running at once, and the CPU seconds one of
    those verifies took (what a login's hash is compared with)."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        start = time.time() + 1.0  # every process has started and hashed once by then
        results = pool.map(_verify_for, [(profile, start, seconds)] * processes, chunksize=1)
    rate = sum(count / elapsed for count, elapsed, _ in results)
    return rate, sum(cpu for _, _, cpu in results) / max(1, sum(count for count, _, _ in results))


def verify_rate(profile: str, processes: int, seconds: float) -> float:
    """Verifies per second of ``processes`` processes running at once."""
    return verify_load(profile, processes, seconds)[0]


def _one_verify(args: tuple[str, int]) -> list[tuple[float, float]]:
    profile, count = args
    h = hasher(profile)
    stored = h.hash(PASSWORD)
    times = []
    for _ in range(count):
        began, cpu = time.perf_counter(), time.process_time()
        h.verify(stored, PASSWORD)
        times.append((time.perf_counter() - began, time.process_time() - cpu))
    return times


def verify_time_and_cpu(profile: str, count: int) -> tuple[float, float]:
    """Median seconds of one verify in one process, the other cores idle, and its mean CPU seconds."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        times = pool.apply(_one_verify, ((profile, count),))
    return statistics.median(wall for wall, _ in times), sum(cpu for _, cpu in times) / len(times)


def verify_time(profile: str, count: int) -> float:
    """Median seconds of one verify in one process, the other cores idle."""
    return verify_time_and_cpu(profile, count)[0]
