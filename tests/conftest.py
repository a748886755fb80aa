"""Shared fixtures: a real, migrated SQLite file per test, the app in-process, an injectable clock."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from doorward.config import Settings
from doorward.storage import upgrade
from doorward.web import create_app

PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"


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


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: Path) -> str:
    path = tmp_path / "doorward.db"
    shutil.copy(migrated_template, path)
    return f"sqlite:///{path}"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "hash_profile": "testing",
        "hash_workers": 2,
        "hash_queue": 64,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


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
