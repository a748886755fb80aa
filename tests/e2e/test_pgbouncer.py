"""doorward behind pgbouncer in transaction mode (DOORWARD_DB_POOLER=transaction): the end-to-end
login, session and registration tests again, on PostgreSQL, every connection through pgbouncer.

The tests are the suite's own (imported below); this module's fixtures change where they run:
``start_server`` starts ``serve --workers 2`` through a private pgbouncer, which shares three server
connections among all clients, and every server started must have answered no request with a 5xx.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.e2e import test_multi_instance, test_server
from tests.pgbouncer import PgBouncer
from tests.servers import Server

pytestmark = pytest.mark.e2e

ACCESS_STATUS = re.compile(r'" (\d{3})$')
"""The status at the end of uvicorn's access line: ``127.0.0.1:5432 - "GET /session HTTP/1.1" 200``."""
PLAIN_ERROR = re.compile(r"Traceback|^error: |Error\b")
"""What tells an error in a line that is not JSON: a traceback, the CLI's one-line error, an exception."""


@pytest.fixture
def database_url(postgres_database: str) -> str:
    """PostgreSQL only: the suite's tests that take ``database_url`` get a database of their own,
    which ``start_server`` reaches through pgbouncer."""
    return postgres_database


@pytest.fixture
def start_server(
    start_server: Callable[..., Server], pgbouncer: PgBouncer, postgres_database: str
) -> Iterator[Callable[..., Server]]:
    """The suite's ``start_server``, on PostgreSQL through pgbouncer, with two workers each."""
    started: list[Server] = []

    def start(*args: str, database_url: str | None = None, **settings: str) -> Server:
        workers = () if "--workers" in args else ("--workers", "2")
        url = pgbouncer.url(database_url or postgres_database)
        server = start_server(*workers, *args, database_url=url, db_pooler="transaction", **settings)
        started.append(server)
        return server

    yield start
    for server in started:  # all at once: each takes a second or two to stop
        if not server.stopped:
            server.process.terminate()
    for server in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=10)
        server.stop()  # a SIGKILL to the group of one that did not stop
        assert not failures(server.stderr()), server.explain(failures(server.stderr()))


def failures(log: str) -> list[str]:
    """The server's log lines of errors, and its access lines of 5xx answers."""
    found, answered = [], 0
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            # Not doorward's JSON: a traceback or an error line printed by something else.
            if PLAIN_ERROR.search(line):
                found.append(line)
            continue
        status = ACCESS_STATUS.search(str(record["event"])) if record["logger"] == "uvicorn.access" else None
        answered += status is not None
        if record["level"] in {"error", "critical"} or (status and int(status.group(1)) >= 500):
            found.append(line)
    # At least start_server's /healthz: were no access line read, no 5xx would be seen either.
    return found if answered else [*found, "no access line read"]


@pytest.fixture
def pair(start_server: Callable[..., Server], database_url: str) -> tuple[Server, Server]:
    """Two ``serve --workers 2`` over one database, both through pgbouncer."""
    # One after the other: start_server names each server's files by how many it has started.
    return start_server(database_url=database_url), start_server(database_url=database_url)


# The suite's tests, collected here again: with this module's fixtures they run through pgbouncer.
# (Not test_server's CLI login test: its login, check and logout are the first test's below, whose
# revocation runs a command through pgbouncer too; leaving it out keeps this module under 30 s.)
test_a_session_is_one_everywhere = test_multi_instance.test_a_session_is_one_everywhere
test_two_workers_answer_60_concurrent_logins_without_locking = (
    test_server.test_two_workers_answer_60_concurrent_logins_without_locking
)
test_sixteen_concurrent_registrations_of_one_email_make_one_account = (
    test_multi_instance.test_sixteen_concurrent_registrations_of_one_email_make_one_account
)
