"""Shared fixtures: a real, migrated SQLite file per test, the app in-process, an injectable clock."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import make_url

from doorward.config import Settings
from doorward.core.clock import Clock
from doorward.storage import upgrade
from doorward.web import create_app
from tests.pgbouncer import PgBouncer, pgbouncer_binary, running_pgbouncer
from tests.pgreuse import DatabasePool
from tests.redis_server import own_redis  # noqa: F401 - a fixture, offered to every test module
from tests.servers import start_server  # noqa: F401 - a fixture, offered to every test module

PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"
REDIS_URL = os.environ.get("DOORWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("DOORWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SEED_400 = b'{"success":false,"error":"Email and password required"}'
"""The seed's 400 body, byte for byte."""


def postgres_url(database: str) -> str:
    """The test server's URL, naming another database."""
    return str(make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False))


def admin(*statements: str) -> None:
    """Run statements on the server's maintenance database, outside any transaction."""

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://", 1), timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def postgres_unavailable() -> str | None:
    """None when the test server answers; otherwise why not, in one line."""
    try:
        admin("SELECT 1")
    except Exception as exc:
        return f"no server at {make_url(POSTGRES_URL).render_as_string()} ({type(exc).__name__}: {exc})"
    return None


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated with the real Alembic scripts; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "doorward.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated once; each test clones it (CREATE DATABASE ... TEMPLATE)."""
    reason = postgres_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    name = f"doorward_template_{os.getpid()}"
    admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    upgrade(postgres_url(name))
    yield name
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pgbouncer(tmp_path_factory: pytest.TempPathFactory, postgres_template: str) -> Iterator[PgBouncer]:
    """A pgbouncer of the module's own in transaction mode, in front of the test PostgreSQL (see
    tests/pgbouncer.py); skipped where it is not installed, a failure under CI=true."""
    binary = pgbouncer_binary()
    if binary is None:
        missing = "no pgbouncer on the PATH or in /usr/sbin (apt-get install pgbouncer)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the pgbouncer tests need pgbouncer under CI=true: {missing}", pytrace=False)
        pytest.skip(f"pgbouncer tests skipped: {missing}")
    with running_pgbouncer(binary, tmp_path_factory.mktemp("pgbouncer"), POSTGRES_URL) as bouncer:
        yield bouncer


def redis_unavailable() -> str | None:
    """None when the test Redis answers; otherwise why not, in one line."""
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except Exception as exc:
        return f"no Redis at {REDIS_URL} ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture
def redis_url() -> str:
    """The test Redis; every test using it takes a key prefix of its own (see ``redis_prefix``)."""
    reason = redis_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI=true: {reason}", pytrace=False)
        pytest.skip(f"Redis tests skipped: {reason}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"doorward-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_template: Path) -> str:
    """A migrated SQLite database of this test's own."""
    path = tmp_path / "doorward.db"
    shutil.copy(migrated_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_pool(postgres_template: str) -> Iterator[DatabasePool]:
    """Clones of the template, each emptied after its test and used again (see tests/pgreuse.py)."""
    pool = DatabasePool(postgres_template, postgres_url, admin)
    yield pool
    pool.close()


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own: a fresh clone of the template, or one an
    earlier test left as it found it, its rows deleted (tests/pgreuse.py); dropped if changed."""
    pool: DatabasePool = request.getfixturevalue("postgres_pool")
    name = pool.take()
    yield postgres_url(name)
    pool.give_back(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each dialect."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_template")  # skips or fails as the other PostgreSQL tests do
    name = f"doorward_empty_{uuid.uuid4().hex[:12]}"
    admin(f'CREATE DATABASE "{name}"')
    yield postgres_url(name)
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that takes this runs against both databases."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_database"
    return str(request.getfixturevalue(fixture))


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "mail_dir": Path(tempfile.gettempdir()) / "doorward-test-mail",
        "hash_profile": "testing",
        "hash_workers": 2,
        "hash_queue": 64,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The settings of the ``started`` app (for tests that read them: its database, its mail folder)."""
    return make_settings(database_url)


@asynccontextmanager
async def app_for(
    database_url: str,
    clock: Clock | None = None,
    *,
    base_url: str = "http://testserver",
    **overrides: object,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on this database, started (its lifespan entered), and a client speaking to it in-process.

    The one way tests start an app: the testing settings of ``make_settings``, with ``overrides`` on top.
    Its clock is a FakeClock unless one is given (``utc_now`` for tests that also run the CLI).
    """
    app = create_app(make_settings(database_url, **overrides), clock=clock or FakeClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield app, client


@pytest.fixture
async def started(database_url: str, clock: FakeClock) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app of the ``app`` and ``client`` fixtures, on the ``settings`` fixture's values."""
    async with app_for(database_url, clock) as app_and_client:
        yield app_and_client


@pytest.fixture
def app(started: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return started[0]


@pytest.fixture
def client(started: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return started[1]


async def register(client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD) -> int:
    response = await client.post("/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return int(response.json()["user"]["id"])


async def login(client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    response = await client.post("/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["sessionToken"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
