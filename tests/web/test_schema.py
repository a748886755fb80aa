"""Every operation /openapi.json lists, fuzzed by schemathesis against the real app (in-process, over
ASGI, on a real database): no answer is a 500, every status is one the operation documents, and every
body matches its documented schema (issue 21, item 11).

Where schemathesis sends the bearer scheme it gets a fresh session (``Authorization: Bearer``), so
operations that take one are fuzzed past the session check. The run is repeatable (a fixed seed,
derandomized Hypothesis) and bounded (``max_examples``). A second run, on a PostgreSQL database cut
off (a TCP proxy, every connection reset) once the app has started, shows that every operation
documents the 503 it then answers, and none answers 500.

The apps are built at import, as schemathesis needs its schema then (its fixture-based loader does
not run under this pytest), and their schemas read without starting them; their databases are made by
the fixtures below, before the first request starts an app (schemathesis enters its lifespan then,
and leaves it at the end of each operation's test).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema
from sqlalchemy import make_url

from doorward.web import create_app
from tests.conftest import EMAIL, PASSWORD, POSTGRES_URL, FakeClock, admin, make_settings
from tests.proxy import TcpProxy

SEED = 21
"""Schemathesis' seed: the same cases at every run."""

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
GONE_CHECKS = [status_code_conformance, response_schema_conformance]
"""Without its database the app answers 503 (a server error, so not_a_server_error is left out); a
500 is a status no operation documents."""

FUZZING = hypothesis.settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)

_SQLITE_FILE = Path(tempfile.gettempdir()) / f"doorward-schema-{os.getpid()}.db"
_GONE_DATABASE = f"doorward_schema_{os.getpid()}"
_CLOCK = FakeClock()
_POSTGRES = make_url(POSTGRES_URL)
_PROXY = TcpProxy(_POSTGRES.host or "127.0.0.1", _POSTGRES.port or 5432)
"""Between the gone app and its PostgreSQL: cut once the app has started."""


def _schema(database_url: str) -> BaseSchema:
    # The fuzzing of /register must not trip the registration limit before every case is tried.
    settings = make_settings(database_url, throttle_client_registrations=1_000_000)
    app = create_app(settings, clock=_CLOCK)
    # What GET /openapi.json serves (app.openapi()), read without starting the app, as from_asgi would.
    schema = schemathesis.openapi.from_dict(app.openapi(), config=SchemathesisConfig(seed=SEED))
    schema.app, schema.location = app, "/openapi.json"
    return schema


up = _schema(f"sqlite:///{_SQLITE_FILE}")
gone = _schema(
    _POSTGRES.set(database=_GONE_DATABASE, host="127.0.0.1", port=_PROXY.port).render_as_string(False)
)


def _call(schema: BaseSchema, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    if body is None:
        return schema[path][method].Case().call()
    return schema[path][method].Case(body=body, media_type="application/json").call()


def _has_authorization(case: Case) -> bool:
    return "authorization" in {name.lower() for name in case.headers or {}}


@pytest.fixture(scope="module")
def sqlite_database(migrated_template: Path) -> Iterator[None]:
    """The up app's database, with the account whose sessions the cases use."""
    shutil.copy(migrated_template, _SQLITE_FILE)
    answer = _call(up, "POST", "/register", {"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    yield
    for file in _SQLITE_FILE.parent.glob(_SQLITE_FILE.name + "*"):
        file.unlink()


def new_session() -> dict[str, str]:
    """``Authorization`` of a new session of the test account on the up app."""
    login = {"email": EMAIL, "password": PASSWORD}
    answer = _call(up, "POST", "/login", login)
    if answer.status_code == 429:  # the fuzzing of /login tripped the per-client limit: wait it out
        _CLOCK.advance(hours=1)
        answer = _call(up, "POST", "/login", login)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['sessionToken']}"}


@up.parametrize()
@FUZZING
def test_every_operation_answers_as_documented(case: Case, sqlite_database: None) -> None:
    # Schemathesis fills the bearer scheme with made-up tokens: replaced by a real session, so the
    # operation is fuzzed past the session check; its cases without one show the 401.
    case.call_and_validate(headers=new_session() if _has_authorization(case) else {}, checks=CHECKS)


@pytest.fixture(scope="module")
def gone_database(postgres_template: str) -> Iterator[None]:
    admin(f'CREATE DATABASE "{_GONE_DATABASE}" TEMPLATE "{postgres_template}"')
    yield
    admin(f'DROP DATABASE IF EXISTS "{_GONE_DATABASE}" WITH (FORCE)')
    _PROXY.close()


@pytest.fixture
def database_gone(gone_database: None) -> None:
    """The gone app started on its database, which then goes away (every connection reset)."""
    _PROXY.restore()
    assert _call(gone, "GET", "/healthz").status_code == 200  # started: its lifespan checked the schema
    _PROXY.cut()


@gone.parametrize()
@FUZZING
def test_every_operation_documents_its_answer_without_a_database(case: Case, database_gone: None) -> None:
    # A well-formed token the app cannot check without its database.
    bearer = {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"}
    case.call_and_validate(headers={} if _has_authorization(case) else bearer, checks=GONE_CHECKS)
