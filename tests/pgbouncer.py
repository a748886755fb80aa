"""A pgbouncer of a test module's own, in transaction mode, in front of the test PostgreSQL.

How large deployments reach PostgreSQL, and what a client used to a server of its own meets there:
startup parameters it refuses, and server connections shared between clients, so that a prepared
statement made by one client is met (or missed) by another.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.servers import free_port, wait_for

SERVER_CONNECTIONS = 3
"""Server connections per database: far fewer than the clients, so that they change hands often."""


def pgbouncer_binary() -> str | None:
    """Debian installs it in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return found if os.access(found, os.X_OK) else None


@dataclass
class PgBouncer:
    """A running pgbouncer: where it listens, and what it logged."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, database_url: str) -> str:
        """``database_url`` (a database of the test server) reached through this pgbouncer."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return str(url.render_as_string(hide_password=False))

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _config(port: int, server_host: str, server_port: int, userlist: Path) -> str:
    return f"""\
[databases]
; any database name the clients ask for, on the test server
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {userlist}
pool_mode = transaction
default_pool_size = {SERVER_CONNECTIONS}
max_client_conn = 2000
; hand out the server connections in turn rather than the last used: clients change server often
server_round_robin = 1
; no ignore_startup_parameters: a client must send none that pgbouncer does not know
"""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running_pgbouncer(binary: str, folder: Path, server_url: str) -> Iterator[PgBouncer]:
    """A pgbouncer (pool_mode=transaction) on a free port in front of the server of ``server_url``,
    its files in ``folder``; stopped on exit."""
    server = make_url(server_url)
    userlist = folder / "userlist.txt"
    # pgbouncer logs in to the server as the client's user, with the password written here.
    userlist.write_text(f'"{server.username or "postgres"}" "{server.password or ""}"\n')
    port = free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(_config(port, server.host or "127.0.0.1", server.port or 5432, userlist))
    log_path = folder / "pgbouncer.log"
    # It refuses to run as root; it reads its files first, then becomes this user.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, *user, str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    bouncer = PgBouncer(port, process, log_path)
    try:
        started = wait_for(lambda: process.poll() is not None or _listening(port), seconds=10)
        if not started or process.poll() is not None:
            pytest.fail(f"pgbouncer did not start:\n{bouncer.log()}", pytrace=False)
        yield bouncer
    finally:
        bouncer.stop()
