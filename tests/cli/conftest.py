"""The ``doorward`` command, driven in-process through typer's CliRunner against real databases.

Every effect is checked the way a user would see it: the command's exit code and output, the rows in
the database, and what the HTTP API (in-process, same database) then answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from doorward.cli import app as cli
from doorward.core.clock import utc_now
from tests.conftest import EMAIL, PASSWORD, app_for, bearer
from tests.db import fetch_sync

T = TypeVar("T")

runner = CliRunner()


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """What ``invoke`` does, for the tests that call ``runner.invoke`` themselves (``tune`` sets up
    logging too): later records must not go to CliRunner's stream, closed by then."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def invoke(database_url: str, /, *args: str, input: str | None = None, **env: str) -> Result:
    """Run ``doorward *args`` with this database and the testing hash profile (``env`` overrides)."""
    environment = {"DOORWARD_DATABASE_URL": database_url, "DOORWARD_HASH_PROFILE": "testing"}
    environment.update({f"DOORWARD_{name.upper()}": value for name, value in env.items()})
    # The CLI points the root logger at the stderr of the moment, which is CliRunner's and is closed
    # afterwards: put logging back as it was, so later log records do not go to a closed stream.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return runner.invoke(cli, list(args), env=environment, input=input)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def human_lines(stream: str) -> list[str]:
    """The lines of ``stream`` meant for a person: everything but the JSON log records."""
    lines = []
    for line in stream.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            lines.append(line)
    return lines


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """A non-zero exit with exactly one human-readable ``error: ...`` line containing ``fragments``."""
    assert result.exit_code != 0, result.output
    lines = human_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    return fetch_sync(database_url, sql)


def stored_hashes(database_url: str) -> dict[str, str]:
    rows = query(database_url, "SELECT email, password_hash FROM users")
    return {str(email): str(password_hash) for email, password_hash in rows}


def user_count(database_url: str) -> int:
    ((count,),) = query(database_url, "SELECT count(*) FROM users")
    return int(str(count))


def api(database_url: str, action: Callable[[httpx.AsyncClient], Awaitable[T]], **settings: object) -> T:
    """Run ``action`` against the real app (in-process, started and stopped) on this database."""

    async def main() -> T:
        # The real clock: the CLI, run alongside, knows no other.
        async with app_for(database_url, utc_now, **settings) as (_, client):
            return await action(client)

    return asyncio.run(main())


def api_login(database_url: str, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    async def action(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/login", json={"email": email, "password": password})

    return api(database_url, action)


def api_token(database_url: str, email: str = EMAIL, password: str = PASSWORD) -> str:
    response = api_login(database_url, email, password)
    assert response.status_code == 200, response.text
    return str(response.json()["sessionToken"])


def api_session(database_url: str, token: str) -> httpx.Response:
    async def action(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/session", headers=bearer(token))

    return api(database_url, action)


def add_user(database_url: str, email: str = EMAIL, password: str = PASSWORD) -> Result:
    result = invoke(database_url, "users", "add", email, "--password-stdin", input=password + "\n")
    assert result.exit_code == 0, result.output
    return result
