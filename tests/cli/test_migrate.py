"""``doorward migrate``: a fresh schema, idempotence, and one-line failures."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import add_user, api_login, assert_one_line_error, invoke, query
from tests.db import table_names
from tests.pgbouncer import PgBouncer
from tests.servers import doorward_env


def test_migrate_creates_the_schema_on_a_fresh_file_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    first = invoke(url, "migrate")
    assert first.exit_code == 0, first.output
    assert "database schema is up to date" in first.stdout
    tables = table_names(url)
    assert {"users", "sessions", "secrets", "alembic_version"} <= tables
    version = query(url, "SELECT version_num FROM alembic_version")
    assert len(version) == 1

    second = invoke(url, "migrate")
    assert second.exit_code == 0, second.output
    assert "database schema is up to date" in second.stdout
    assert query(url, "SELECT version_num FROM alembic_version") == version

    # The schema is usable: an account can be created and used on it.
    add_user(url)
    assert api_login(url).status_code == 200


def test_migrate_against_an_unreachable_database_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke(f"postgresql://doorward@127.0.0.1:{port}/doorward", "migrate")
    assert_one_line_error(result, "migration failed")


def test_migrate_on_a_file_that_is_not_a_database_fails_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_text("this is not an SQLite database\n")
    result = invoke(f"sqlite:///{path}", "migrate")
    assert_one_line_error(result, "migration failed", "not a database")


def test_migrate_through_pgbouncer_says_to_set_the_pooler(
    pgbouncer: PgBouncer, postgres_database: str
) -> None:
    """Without DOORWARD_DB_POOLER, a migration's named statements stay on the server connection
    pgbouncer lent it, and the next process's statements of the same names collide there."""

    def migrate(**settings: str) -> subprocess.CompletedProcess[str]:
        env = doorward_env(pgbouncer.url(postgres_database), **settings)
        command = [sys.executable, "-m", "doorward", "migrate"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert migrate().returncode == 0  # the first one, on fresh server connections
    refused = migrate()
    assert refused.returncode == 1, refused.stderr
    assert (
        "already exists (is PostgreSQL behind pgbouncer in transaction mode? then set "
        "DOORWARD_DB_POOLER=transaction)"
    ) in refused.stderr
    assert migrate(db_pooler="transaction").returncode == 0
