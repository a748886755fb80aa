"""``doorward serve --no-migrate`` checks the schema's revision before any server starts."""

from __future__ import annotations

import socket

from doorward.storage import downgrade
from doorward.storage.migrate import newest_revision
from tests.cli.conftest import assert_one_line_error, invoke


def test_no_migrate_on_an_older_schema_names_both_revisions(database_url: str) -> None:
    downgrade(database_url, "0003")
    result = invoke(database_url, "serve", "--no-migrate", "--port", "0")
    line = assert_one_line_error(result, "at 0003", f"the newest is {newest_revision()}", "doorward migrate")
    assert result.exit_code == 1, line


def test_no_migrate_against_an_unreachable_database_is_one_line() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke(f"postgresql://doorward@127.0.0.1:{port}/doorward", "serve", "--no-migrate")
    assert_one_line_error(result, "cannot read the database schema's revision")
