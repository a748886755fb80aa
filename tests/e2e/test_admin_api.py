"""The admin API end to end: a key made with the real command, used against the real server over HTTP,
revoked with the command; the key in none of the server's log lines (access log and debug level on)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import EMAIL, PASSWORD
from tests.servers import Server, cli

pytestmark = pytest.mark.e2e


def test_a_key_works_over_http_is_revoked_at_once_and_is_never_logged(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(log_level="DEBUG", access_log="true")
    assert cli(server, "users", "add", EMAIL, "--password-stdin", input=PASSWORD + "\n").returncode == 0
    made = cli(server, "admin", "keys", "create", "ops", "--scope", "write")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}

    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        found = http.get("/admin/users", params={"query": "ada"}, headers=auth)
        assert found.status_code == 200, server.explain(found.text)
        (user,) = found.json()["users"]
        disabled = http.post(f"/admin/users/{user['id']}/disable", headers=auth)
        assert disabled.json() == {"success": True, "ended": 0}, server.explain(disabled.text)
        assert http.get("/session", headers=auth).status_code == 401  # never a session
        assert http.post("/login", json={"email": EMAIL, "password": PASSWORD}).status_code == 401

        assert cli(server, "admin", "keys", "revoke", "ops").returncode == 0
        revoked = http.post(f"/admin/users/{user['id']}/enable", headers=auth)
        assert revoked.status_code == 401, server.explain(revoked.text)

    log = server.stderr()
    assert "admin.api_call" in log and '"key": "ops"' in log, server.explain()
    assert key[4:] not in log, "the admin key reached the server's log"
