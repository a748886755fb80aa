"""``doorward throttle clear --client ADDRESS``: a client's limits lifted, in either throttle store."""

from __future__ import annotations

import httpx
import pytest

from tests.cli.conftest import api, assert_one_line_error, invoke

LIMITS = {"throttle_client_failures": 2, "throttle_client_mails": 1}


def statuses(database_url: str, **settings: object) -> list[int]:
    """Two wrong logins and a third, two reset requests: what one client (127.0.0.1) gets."""

    async def action(client: httpx.AsyncClient) -> list[int]:
        answers = [
            await client.post("/login", json={"email": f"u{n}@example.com", "password": "wrong password!"})
            for n in range(3)
        ]
        answers += [
            await client.post("/password/reset/request", json={"email": "u0@example.com"}) for _ in range(2)
        ]
        return [answer.status_code for answer in answers]

    return api(database_url, action, **LIMITS, **settings)


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_throttle_clear_lifts_a_clients_limits(
    request: pytest.FixtureRequest, database_url: str, backend: str
) -> None:
    store: dict[str, str] = {}
    if backend == "redis":
        store = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    assert statuses(database_url, **store) == [401, 401, 429, 202, 429]
    result = invoke(database_url, "throttle", "clear", "--client", "127.0.0.1", **store)
    assert result.exit_code == 0, result.output
    assert result.stdout == "cleared 127.0.0.1: failed logins 2, mail requests 2\n"
    assert statuses(database_url, **store) == [401, 401, 429, 202, 429]  # as new
    other = invoke(database_url, "throttle", "clear", "--client", "192.0.2.1", **store)
    assert other.exit_code == 0, other.output
    assert other.stdout == "nothing to clear for 192.0.2.1\n"


def test_throttle_clear_refuses_what_is_not_an_address(sqlite_url: str) -> None:
    assert_one_line_error(invoke(sqlite_url, "throttle", "clear", "--client", "not-an-address"), "address")
