"""DOORWARD_DB_TIMEOUT bounds a request's wait on a frozen PostgreSQL: connecting, waiting for a
pooled connection and the statements, together (issue 21 item 8)."""

from __future__ import annotations

import time

from sqlalchemy import make_url

from tests.conftest import EMAIL, PASSWORD, app_for, bearer, login, register
from tests.proxy import TcpProxy

TIMEOUT = 1.0
MARGIN = 0.5


async def test_a_frozen_postgresql_answers_503_within_the_db_timeout(postgres_database: str) -> None:
    url = make_url(postgres_database)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        # The statement timeout left at its default: DOORWARD_DB_TIMEOUT alone must bound a request.
        async with app_for(proxied, db_timeout=TIMEOUT) as (_app, client):
            await register(client)
            token = await login(client)
            auth = bearer(token)
            # Warm connections in both pools (the session lookup's and the engine's), then freeze
            # them mid-conversation: the server stops answering, the sockets stay open.
            for _ in range(3):
                assert (await client.get("/session", headers=auth)).status_code == 200
                assert (await client.get("/sessions", headers=auth)).status_code == 200
            proxy.freeze()
            for method, path, body in (
                ("GET", "/session", None),
                ("GET", "/sessions", None),
                ("POST", "/login", {"email": EMAIL, "password": PASSWORD}),
                ("POST", "/logout", None),
                ("GET", "/healthz", None),
                ("GET", "/readyz", None),
            ):
                started = time.monotonic()
                response = await client.request(method, path, json=body, headers=auth)
                elapsed = time.monotonic() - started
                assert response.status_code == 503, (path, response.text)
                assert elapsed < TIMEOUT + MARGIN, f"{path} took {elapsed:.2f} s"
            proxy.restore()
            deadline = time.monotonic() + 10
            while (await client.get("/session", headers=auth)).status_code != 200:
                assert time.monotonic() < deadline, "no recovery after the database came back"
