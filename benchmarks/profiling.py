"""Sampling profiles of running servers with py-spy, summarised as the functions that cost most.

py-spy samples every process of the server's tree (``--subprocesses``) without stopping them
(``--nonblocking``) and, by default, only threads that are on a CPU: an event loop waiting in
epoll is not counted, a thread inside argon2's C code is.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_PROCESSES = re.compile(r'^(?:process \d+:"[^"]*";?)+')
_SITE = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def py_spy() -> str | None:
    """py-spy beside this interpreter (a virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, output: Path, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start py-spy on ``pid`` and its children for ``seconds``; collapsed stacks go to ``output``."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            str(rate),
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _short(frame: str) -> str:
    """``func (…/site-packages/pkg/mod.py:12)`` -> ``pkg/mod.py:func``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = _SITE.sub("", match["file"])
    path = path.split("/src/", 1)[-1]
    return f"{path}:{match['func']}"


@dataclass(frozen=True)
class Summary:
    samples: int
    self_share: list[tuple[str, float]]
    inclusive_share: list[tuple[str, float]]

    def as_json(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "self": [{"function": f, "share": round(s, 4)} for f, s in self.self_share],
            "inclusive": [{"function": f, "share": round(s, 4)} for f, s in self.inclusive_share],
        }


def summarise(collapsed: Path, top: int = 25) -> Summary:
    """The functions with most samples at the top of the stack (self) and anywhere in it (inclusive)."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # The stack starts with the processes (whose command lines may hold ';'), then the frames
        # run outermost to innermost.
        frames = [_short(f) for f in _PROCESSES.sub("", stack).split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            anywhere[name] += count
    if total == 0:
        return Summary(0, [], [])
    return Summary(
        total,
        [(name, n / total) for name, n in own.most_common(top)],
        [(name, n / total) for name, n in anywhere.most_common(top)],
    )
