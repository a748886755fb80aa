"""End to end: the real server (``python -m doorward serve``) as a subprocess, spoken to over real HTTP."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import EMAIL, PASSWORD
from tests.servers import Server, cli

pytestmark = pytest.mark.e2e


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_cli_user_logs_in_checks_and_ends_a_session_over_http(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()

    added = cli(server, "users", "add", EMAIL, "--password-stdin", input=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout + added.stderr

    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        login = http.post("/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200, server.explain(login.text)
        body = login.json()
        assert body["success"] is True
        assert body["user"]["email"] == EMAIL
        token = body["sessionToken"]
        auth = {"Authorization": f"Bearer {token}"}

        check = http.get("/session", headers=auth)
        assert check.status_code == 200, server.explain(check.text)
        assert check.json()["success"] is True
        assert check.json()["user"] == body["user"]

        logout = http.post("/logout", headers=auth)
        assert logout.status_code == 200, server.explain(logout.text)
        assert logout.json() == {"success": True}

        after = http.get("/session", headers=auth)
        assert after.status_code == 401, server.explain(after.text)
        assert after.json() == {"success": False, "error": "Invalid session", "code": "invalid_session"}
        assert after.headers["WWW-Authenticate"] == "Bearer"

    leaky = httpx.get(f"{server.base_url}/password/reset?token=SECRET-LINK-TOKEN-123", timeout=5)
    assert leaky.status_code < 500
    server.stop()
    log = server.stderr()
    assert "SECRET-LINK-TOKEN-123" not in log  # access lines drop query strings
    assert "?[redacted]" in log
    assert PASSWORD not in log
    assert token not in log
    # One JSON object per line, including the audit trail of what just happened.
    records = json_lines(log)
    events = [record["event"] for record in records]
    assert "login.succeeded" in events, log
    assert "session.ended" in events, log


def test_the_access_log_can_be_turned_off(start_server: Callable[..., Server]) -> None:
    server = start_server(access_log="false")
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.post("/login", json={"email": EMAIL, "password": PASSWORD}).status_code == 401
        assert http.get("/session").status_code == 401
    server.stop()
    loggers = {record["logger"] for record in json_lines(server.stderr())}
    assert "uvicorn.access" not in loggers
    assert "doorward.audit" in loggers  # the audit trail is not the access log


async def register_and_login_concurrently(base_url: str, accounts: dict[str, str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        registered = await asyncio.gather(
            *(http.post("/register", json={"email": e, "password": p}) for e, p in accounts.items())
        )
        for response in registered:
            assert response.status_code == 201, response.text
        logins = [
            http.post("/login", json={"email": email, "password": password})
            for _ in range(3)
            for email, password in accounts.items()
        ]
        return list(await asyncio.gather(*logins))


def test_two_workers_answer_60_concurrent_logins_without_locking(
    start_server: Callable[..., Server],
) -> None:
    # The hash pool refuses at once (503) beyond DOORWARD_HASH_WORKERS + DOORWARD_HASH_QUEUE pending
    # hashes per process; the default queue may be too short for 60 logins arriving at once on a
    # small machine. This test is about the database under two processes, so let them queue.
    server = start_server("--workers", "2", hash_queue="64")
    accounts = {f"load{i:02d}@example.com": f"{secrets.token_hex(8)} load passphrase" for i in range(20)}

    responses = asyncio.run(register_and_login_concurrently(server.base_url, accounts))

    assert len(responses) == 60
    failures = [(r.status_code, r.text) for r in responses if r.status_code != 200]
    assert not failures, server.explain(failures)
    tokens = [r.json()["sessionToken"] for r in responses]
    assert len(set(tokens)) == 60
    for response in responses:
        assert "database is locked" not in response.text

    server.stop()
    log = server.stderr()
    assert "database is locked" not in log, log
    # Each worker process logs for itself: its audit events are there, as JSON lines.
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert events.count("login.succeeded") == 60, log
    for password in accounts.values():
        assert password not in log
    for token in tokens:
        assert token not in log
