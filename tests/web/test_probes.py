"""The probes: /healthz (every store a login needs), /readyz (each check named, migrations at head),
/livez (the process alone); and a Redis outage seen where an operator looks, with a Redis of the
test's own that it can stop (never the shared one: tests/redis_server.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from doorward.logs import JsonFormatter
from doorward.storage import downgrade
from tests.conftest import EMAIL, PASSWORD, app_for, bearer, login, register
from tests.redis_server import OwnRedis

HEALTH_DB_DOWN = (
    b'{"status":"unavailable","success":false,"error":"Database unavailable","code":"unavailable"}'
)
"""The README's /healthz row, byte for byte: load balancers may match it."""
UNAVAILABLE = b'{"success":false,"error":"Service temporarily unavailable","code":"unavailable"}'
"""The contract's 503 for any call that reaches a store, byte for byte."""


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


async def test_a_redis_outage_fails_healthz_and_readyz_and_the_log_names_redis(
    sqlite_url: str, own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_for(sqlite_url, redis_url=own_redis.url, db_timeout=1) as (_app, client):
        await register(client)
        token = await login(client)
        assert (await client.get("/healthz")).json() == {"status": "ok"}

        own_redis.stop()
        caplog.clear()
        refused = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        assert (refused.status_code, refused.content) == (503, UNAVAILABLE)
        assert "Redis unavailable" in messages(caplog)
        assert "database unavailable" not in messages(caplog)
        line = next(
            JsonFormatter().format(r) for r in caplog.records if r.getMessage() == "Redis unavailable"
        )
        assert '"store": "Redis"' in line

        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {
            "status": "unavailable",
            "success": False,
            "error": "Redis unavailable",
            "code": "unavailable",
        }
        assert (await client.head("/healthz")).status_code == 503
        # The session check needs no Redis: a login does, the signed-in keep working.
        assert (await client.get("/session", headers=bearer(token))).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "hashing": "ok",
            "database": "ok",
            "redis": "failed",
            "migrations": "ok",
        }
        assert (ready.json()["success"], ready.json()["code"]) == (False, "unavailable")
        assert (await client.get("/livez")).json() == {"status": "ok"}


async def test_a_database_outage_keeps_the_healthz_body_and_the_log_names_the_database(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_for(sqlite_url, db_timeout=1) as (app, client):
        await register(client)
        moved = tmp_path / "elsewhere"
        moved.mkdir()
        for file in tmp_path.glob("doorward.db*"):
            file.rename(moved / file.name)
        (tmp_path / "doorward.db").mkdir()  # in its place, something no one can open as a database
        await app.state.services.engine.dispose()
        caplog.clear()
        refused = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        assert (refused.status_code, refused.content) == (503, UNAVAILABLE)
        assert "database unavailable" in messages(caplog)

        health = await client.get("/healthz")
        assert (health.status_code, health.content) == (503, HEALTH_DB_DOWN)
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"hashing": "ok", "database": "failed", "migrations": "failed"}
        live = await client.get("/livez")  # the process is alive: a restart would not bring the database
        assert (live.status_code, live.json()) == (200, {"status": "ok"})


async def test_readyz_fails_while_migrations_are_behind_and_healthz_keeps_its_meaning(
    sqlite_url: str,
) -> None:
    await asyncio.to_thread(downgrade, sqlite_url, "-1")  # a new release's migration not yet run
    async with app_for(sqlite_url) as (_app, client):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"hashing": "ok", "database": "ok", "migrations": "failed"}
        assert "migrat" in ready.json()["error"].lower()
        # /healthz keeps the seed's meaning (the database answers and is migrated at all).
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_stays_ready_on_a_schema_a_newer_release_migrated(sqlite_url: str) -> None:
    """A rolling upgrade: the new release migrated, the old instances must keep serving meanwhile."""
    async with app_for(sqlite_url) as (app, client):
        async with app.state.services.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()["checks"]["migrations"]) == (200, "ok")


async def test_the_probes_answer_get_and_head_and_are_in_openapi(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        get = await client.get(path)
        head = await client.head(path)
        assert get.status_code == head.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    assert (await client.get("/readyz")).json() == {
        "status": "ok",
        "checks": {"hashing": "ok", "database": "ok", "migrations": "ok"},
    }

    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/healthz", "/readyz", "/livez"):
        assert set(paths[path]) == {"get", "head"}, path


async def test_readyz_names_redis_when_it_is_configured(sqlite_url: str, own_redis: OwnRedis) -> None:
    async with app_for(sqlite_url, redis_url=own_redis.url) as (_app, client):
        ready = await client.get("/readyz")
        assert ready.json() == {
            "status": "ok",
            "checks": {"hashing": "ok", "database": "ok", "redis": "ok", "migrations": "ok"},
        }
