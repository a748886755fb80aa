"""``doorward serve`` says where it listens, and keeps the command line's rule when it cannot start:
one ``error:`` line, exit 1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import Server, doorward_env, free_port

pytestmark = pytest.mark.e2e


def serve(database_url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``doorward serve *args``, expected to exit by itself."""
    with subprocess.Popen(
        [sys.executable, "-m", "doorward", "serve", *args],
        env=doorward_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def test_a_busy_port_is_one_line_with_one_worker(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = serve(f"sqlite:///{tmp_path / 'd.db'}", "--port", str(port))
    assert result.returncode == 1, result.stderr
    assert error_lines(result.stderr) == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_migrate_on_an_unmigrated_database_is_one_line(tmp_path: Path, workers: str) -> None:
    database = tmp_path / "empty.db"
    result = serve(f"sqlite:///{database}", "--no-migrate", "--workers", workers, "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert error_lines(result.stderr) == [
        "error: the database schema is not up to date (no revision; the newest is "
        + newest_revision()
        + "): run doorward migrate, or serve without --no-migrate"
    ], result.stderr
    assert "Traceback" not in result.stderr


def newest_revision() -> str:
    from alembic.script import ScriptDirectory

    from doorward.storage.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def test_one_worker_says_where_it_listens(start_server: Callable[..., Server]) -> None:
    """uvicorn says it only for a socket it binds itself; serve binds the one worker's socket."""
    server = start_server()
    port = server.base_url.rsplit(":", 1)[1]
    expected = f'"event": "serving on http://127.0.0.1:{port} (Ctrl+C to stop)"'
    assert expected in server.stderr(), server.explain()
