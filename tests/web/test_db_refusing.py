"""A PostgreSQL database that refuses new connections (``ALLOW_CONNECTIONS false``, as during a
restore or a maintenance window) answers 503 ``unavailable``, never 500. PostgreSQL says so with
SQLSTATE 55000 at connect time, which storage/errors.py did not count as "not now"."""

from __future__ import annotations

import asyncpg
from sqlalchemy import make_url

from tests.conftest import EMAIL, PASSWORD, app_for, bearer, login, register


async def _admin(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username, database="postgres"
    )


async def test_a_database_that_refuses_connections_is_503_not_500(postgres_database: str) -> None:
    name = make_url(postgres_database).database
    async with app_for(postgres_database) as (_app, client):
        await register(client)
        auth = bearer(await login(client))
        admin = await _admin(postgres_database)
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            for method, path, body in (
                ("GET", "/session", None),
                ("GET", "/sessions", None),
                ("POST", "/login", {"email": EMAIL, "password": PASSWORD}),
                ("GET", "/healthz", None),
            ):
                response = await client.request(method, path, json=body, headers=auth)
                assert response.status_code == 503, (path, response.text)
                assert response.json()["code"] == "unavailable", path
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
