"""Real hashing processes for tests: ``serve``'s Hashers, started and stopped around a test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doorward.core.hashpool import HashPool
from doorward.core.password_hashes import PasswordHasher
from doorward.core.passwords import Password
from doorward.hashing.runner import ProcessRunner
from doorward.serve.hash_processes import Hashers
from tests.servers import state, wait_for

RIGHT = Password("correct horse battery staple")
WRONG = Password("correct horse battery stapler")


@pytest.fixture
def hashers() -> Iterator[Hashers]:
    """Two hashing processes, ready and waiting for work."""
    started = Hashers(2)
    started.start()
    assert settled(started)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def bad_deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New processes import a doorward that fails, as after a deploy missing a compiled module."""
    package = tmp_path / "broken" / "doorward"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise ImportError("a bad deploy")\n')
    monkeypatch.setenv("PYTHONPATH", str(package.parent))


def pool_on(hashers: Hashers, hasher: PasswordHasher, capacity: int = 8) -> HashPool:
    """A worker's pool whose hashes go to ``hashers``."""
    return HashPool(hasher, capacity, 0, ProcessRunner(hashers.path))


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def settled(hashers: Hashers) -> bool:
    """Every process has started and waits for work."""
    return wait_for(lambda: all(state(p.pid) == "S" for p in hashers.processes), 10, every=0.001)
