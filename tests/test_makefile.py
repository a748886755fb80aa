"""``make run``: the port and host it serves on, and the public URL that follows them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_run(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """What ``make run *args`` hands ``doorward``: its arguments, then DOORWARD_PUBLIC_URL.

    The real recipe, over a stand-in virtual environment whose ``doorward`` prints what it got.
    """
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-app").touch()  # newer than pyproject.toml: nothing to install
    doorward = venv / "bin" / "doorward"
    doorward.write_text('#!/bin/sh\nprintf "%s\\n" "$*" "${DOORWARD_PUBLIC_URL-unset}"\n')
    doorward.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARD_")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(ROOT), "run", f"VENV={venv}", *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_make_run_serves_on_8000_by_default(tmp_path: Path) -> None:
    assert make_run(tmp_path) == ["serve --host 127.0.0.1 --port 8000", "http://127.0.0.1:8000"]


def test_make_run_takes_a_port_and_the_public_url_follows(tmp_path: Path) -> None:
    assert make_run(tmp_path, "PORT=8001") == ["serve --host 127.0.0.1 --port 8001", "http://127.0.0.1:8001"]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("localhost", "http://localhost:8002"),
        ("0.0.0.0", "http://127.0.0.1:8002"),  # noqa: S104 - listening everywhere, reached locally
        ("::", "http://[::1]:8002"),
        ("::1", "http://[::1]:8002"),
    ],
)
def test_make_run_takes_a_host(tmp_path: Path, host: str, url: str) -> None:
    assert make_run(tmp_path, f"HOST={host}", "PORT=8002") == [f"serve --host {host} --port 8002", url]


def test_a_public_url_set_is_kept(tmp_path: Path) -> None:
    lines = make_run(tmp_path, "PORT=8001", DOORWARD_PUBLIC_URL="https://id.example.com")
    assert lines == ["serve --host 127.0.0.1 --port 8001", "https://id.example.com"]


def test_a_shells_own_host_and_port_are_not_taken(tmp_path: Path) -> None:
    """tcsh exports HOST (the machine's name): only HOST=... on make's command line counts."""
    lines = make_run(tmp_path, HOST="workstation.example", PORT="9")
    assert lines == ["serve --host 127.0.0.1 --port 8000", "http://127.0.0.1:8000"]
