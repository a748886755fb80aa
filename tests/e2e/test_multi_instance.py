"""Several doorward instances over one database: no state of their own, faults answered with 503."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import make_url

from tests.conftest import EMAIL, PASSWORD
from tests.db import fetch_sync
from tests.proxy import TcpProxy
from tests.servers import Server, cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(start_server: Callable[..., Server], database_url: str) -> tuple[Server, Server]:
    """Two server processes over one (already migrated) database."""
    return start_server(database_url=database_url), start_server(database_url=database_url)


def test_a_session_is_one_everywhere(pair: tuple[Server, Server]) -> None:
    one, other = pair
    with httpx.Client(base_url=one.base_url) as a, httpx.Client(base_url=other.base_url) as b:
        assert a.post("/register", json={"email": EMAIL, "password": PASSWORD}).status_code == 201
        token = a.post("/login", json={"email": EMAIL, "password": PASSWORD}).json()["sessionToken"]
        auth = {"Authorization": f"Bearer {token}"}
        assert b.get("/session", headers=auth).json()["user"]["email"] == EMAIL
        assert b.post("/logout", headers=auth).status_code == 200
        assert a.get("/session", headers=auth).status_code == 401  # ended on the other instance

        token = b.post("/login", json={"email": EMAIL, "password": PASSWORD}).json()["sessionToken"]
        auth = {"Authorization": f"Bearer {token}"}
        assert a.get("/session", headers=auth).status_code == 200
        revoked = cli(one, "sessions", "revoke", EMAIL)
        assert revoked.returncode == 0, revoked.stderr
        assert a.get("/session", headers=auth).status_code == 401
        assert b.get("/session", headers=auth).status_code == 401


def test_sixteen_concurrent_registrations_of_one_email_make_one_account(
    pair: tuple[Server, Server], database_url: str
) -> None:
    spellings = ["race@example.com", "RACE@example.com", " race@example.com", "Race@Example.COM"]

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{pair[n % 2].base_url}/register",
                        json={"email": spellings[n % 4], "password": PASSWORD},
                    )
                    for n in range(16)
                )
            )

    answers = asyncio.run(race())
    assert Counter(a.status_code for a in answers) == {201: 1, 409: 15}, [a.text for a in answers]
    assert fetch_sync(database_url, "SELECT count(*) FROM users") == [(1,)]


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_the_throttle_holds_when_attempts_alternate_between_instances(
    request: pytest.FixtureRequest, start_server: Callable[..., Server], database_url: str, backend: str
) -> None:
    counters = {}
    if backend == "redis":
        counters = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    servers = [start_server(database_url=database_url, **counters) for _ in range(2)]
    wrong = {"email": EMAIL, "password": "not the password"}
    with httpx.Client() as client:
        registered = client.post(
            f"{servers[0].base_url}/register", json={"email": EMAIL, "password": PASSWORD}
        )
        assert registered.status_code == 201
        statuses = [client.post(f"{servers[n % 2].base_url}/login", json=wrong).status_code for n in range(7)]
        right = client.post(f"{servers[1].base_url}/login", json={"email": EMAIL, "password": PASSWORD})
    assert statuses == [401] * 5 + [429] * 2
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) >= 1


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_a_burst_on_two_workers_of_each_of_two_instances_gets_only_the_free_failures_verified(
    request: pytest.FixtureRequest, start_server: Callable[..., Server], database_url: str, backend: str
) -> None:
    """40 wrong passwords for one account at once, spread over ``serve --workers 2`` on two
    instances: each 401 is a verify, and only the 5 free failures get one."""
    counters = {}
    if backend == "redis":
        counters = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    servers = [
        start_server("--workers", "2", database_url=database_url, hash_queue="64", **counters)
        for _ in range(2)
    ]
    with httpx.Client() as client:
        registered = client.post(
            f"{servers[0].base_url}/register", json={"email": EMAIL, "password": PASSWORD}
        )
        assert registered.status_code == 201

    async def burst() -> list[httpx.Response]:
        # A connection each, so the workers' shared socket spreads them over both workers.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            wrong = {"email": EMAIL, "password": "not the password"}
            return await asyncio.gather(
                *(client.post(f"{servers[n % 2].base_url}/login", json=wrong) for n in range(40))
            )

    statuses = Counter(answer.status_code for answer in asyncio.run(burst()))
    assert statuses == {401: 5, 429: 35}, statuses


def wait_for(client: httpx.Client, path: str, status: int, headers: dict[str, str], within: float) -> int:
    """Poll until ``path`` answers ``status``; return how many answers it took."""
    deadline = time.monotonic() + within
    attempts = 0
    while True:
        attempts += 1
        if client.get(path, headers=headers).status_code == status:
            return attempts
        assert time.monotonic() < deadline, f"{path} never answered {status}"
        time.sleep(0.1)


def test_database_faults_answer_503_in_time_and_the_service_recovers(
    start_server: Callable[..., Server], postgres_database: str
) -> None:
    url = make_url(postgres_database)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        server = start_server(database_url=proxied, db_timeout="1", db_statement_timeout="1")
        with httpx.Client(base_url=server.base_url, timeout=15) as client:
            assert client.post("/register", json={"email": EMAIL, "password": PASSWORD}).status_code == 201
            token = client.post("/login", json={"email": EMAIL, "password": PASSWORD}).json()["sessionToken"]
            auth = {"Authorization": f"Bearer {token}"}

            for fault in (proxy.cut, proxy.blackhole):
                fault()
                for method, path, body in (
                    ("GET", "/session", None),
                    ("POST", "/login", {"email": EMAIL, "password": PASSWORD}),
                    ("GET", "/healthz", None),
                ):
                    started = time.monotonic()
                    response = client.request(method, path, json=body, headers=auth)
                    elapsed = time.monotonic() - started
                    assert response.status_code == 503, (fault.__name__, path, response.text)
                    assert response.json()["success"] is False, response.text
                    assert elapsed < 4, f"{fault.__name__} {path} took {elapsed:.1f} s"
                proxy.restore()
                wait_for(client, "/session", 200, auth, within=10)
                assert client.get("/healthz").json() == {"status": "ok"}
        server.stop()
        assert '"event": "unhandled error"' not in server.stderr()  # every fault was an expected 503
