"""A store outage seen from outside a real ``doorward serve``: its answers, its probes, its log lines."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import EMAIL, PASSWORD
from tests.redis_server import OwnRedis
from tests.servers import Server

pytestmark = pytest.mark.e2e


def test_a_redis_outage_takes_the_instance_out_and_its_log_names_redis(
    start_server: Callable[..., Server], own_redis: OwnRedis
) -> None:
    server = start_server(redis_url=own_redis.url, db_timeout="1")
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert client.post("/register", json={"email": EMAIL, "password": PASSWORD}).status_code == 201
        assert client.post("/login", json={"email": EMAIL, "password": PASSWORD}).status_code == 200
        own_redis.stop()
        login = client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        assert (login.status_code, login.json()["code"]) == (503, "unavailable")
        health = client.get("/healthz")
        assert (health.status_code, health.json().get("error")) == (503, "Redis unavailable"), (
            server.explain()
        )
        assert client.get("/livez").status_code == 200
    server.stop()
    log = server.stderr()
    assert '"event": "Redis unavailable"' in log and '"store": "Redis"' in log, server.explain()
    assert '"event": "database unavailable"' not in log, server.explain()
