"""Who may call the admin API, on both databases: every endpoint with a write key, a read key, a revoked
key, no key, a session token sent as a key and the session cookie; an admin key where a session is
expected; each key's rate limit; the audit event of every call; and keys that never reach a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from doorward.logs import JsonFormatter
from doorward.web.cookies import cookie_name
from doorward.web.security import CSRF_HEADER, csrf_token_of
from tests.conftest import EMAIL, FakeClock, login, register
from tests.db import fetch
from tests.web.admin import AdminApp, admin_app
from tests.web.test_mfa import api_routes, enrol

IMPORT_CSV = (
    b"email,password_hash\nsha@example.com,6cf7aab8966309e320b82c25eff7c1a36b9001a544225c36cbecf6d6a8fff89f\n"
)
INVALID_KEY = {"success": False, "error": "Invalid admin key", "code": "invalid_admin_key"}
READ_ONLY = {"success": False, "error": "This admin key may only read", "code": "admin_key_read_only"}


async def plain_account(admin: AdminApp, clock: FakeClock) -> int:
    user_id = await register(admin.client)
    await login(admin.client)  # a session, for sessions/revoke to end
    return user_id


async def disabled_account(admin: AdminApp, clock: FakeClock) -> int:
    user_id = await register(admin.client)
    assert (await admin.call("POST", f"/admin/users/{user_id}/disable", admin.write)).status_code == 200
    return user_id


async def locked_account(admin: AdminApp, clock: FakeClock) -> int:
    """An account at the lockout (the test's settings: 2 failures)."""
    user_id = await register(admin.client)
    for _ in range(2):
        failed = await admin.client.post("/login", json={"email": EMAIL, "password": "wrong" * 4})
        assert failed.status_code == 401
        clock.advance(hours=1)
    return user_id


async def mfa_account(admin: AdminApp, clock: FakeClock) -> int:
    await enrol(admin.client, clock)
    (found,) = (await admin.call("GET", "/admin/users?query=ada", admin.read)).json()["users"]
    return int(found["id"])


Setup = Callable[[AdminApp, FakeClock], Awaitable[int]]

# method, path ({id}: the account), changes something, the account it needs, what else the call sends
ENDPOINTS: list[tuple[str, str, bool, Setup, dict[str, Any]]] = [
    ("GET", "/admin/users", False, plain_account, {"params": {"query": "ada"}}),
    ("GET", "/admin/users/{id}", False, plain_account, {}),
    ("GET", "/admin/audit", False, plain_account, {"params": {"user": EMAIL}}),
    ("POST", "/admin/users/{id}/disable", True, plain_account, {}),
    ("POST", "/admin/users/{id}/enable", True, disabled_account, {}),
    ("POST", "/admin/users/{id}/unlock", True, locked_account, {}),
    ("POST", "/admin/users/{id}/sessions/revoke", True, plain_account, {}),
    ("POST", "/admin/users/{id}/mfa/reset", True, mfa_account, {}),
    ("POST", "/admin/users/{id}/password/reset", True, plain_account, {}),
    ("DELETE", "/admin/users/{id}", True, plain_account, {}),
    (
        "POST",
        "/admin/users/import",
        True,
        plain_account,
        {"content": IMPORT_CSV, "headers": {"Content-Type": "text/csv"}},
    ),
]


async def test_every_admin_route_is_in_the_table(database_url: str) -> None:
    async with admin_app(database_url) as admin:
        routes = {
            (method, route.path.replace("{user_id}", "{id}"))
            for route in api_routes(admin.app.routes)
            if route.path.startswith("/admin")
            for method in route.methods
        }
        assert routes == {(method, path) for method, path, *_ in ENDPOINTS}
        spec = (await admin.client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            admin_route = path.startswith("/admin/")
            assert (operation.get("tags") == ["admin"]) == admin_route, path
            assert (operation.get("security") == [{"AdminKey": []}]) == admin_route, path
    assert spec["components"]["securitySchemes"]["AdminKey"]["scheme"] == "bearer"


async def state_of(admin: AdminApp, database_url: str) -> list[Any]:
    """Everything an admin call could change: every row of every account and session table."""
    rows: list[Any] = []
    for table in (
        "users",
        "sessions",
        "account_tokens",
        "totp_factors",
        "recovery_codes",
        "passkeys",
        "attempts",
    ):
        rows.append(sorted(map(repr, await fetch(database_url, f"SELECT * FROM {table}"))))  # noqa: S608
    return rows


@pytest.mark.parametrize(
    ("method", "path", "writes", "setup", "sent"), ENDPOINTS, ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS]
)
async def test_only_a_live_key_of_the_right_scope_is_let_in(
    database_url: str,
    clock: FakeClock,
    method: str,
    path: str,
    writes: bool,
    setup: Setup,
    sent: dict[str, Any],
) -> None:
    async with admin_app(database_url, clock, throttle_lockout_failures=2, throttle_free_failures=1) as admin:
        await register(admin.client, "grace@example.com")
        token = await login(admin.client, "grace@example.com")  # another account's live session
        user_id = await setup(admin, clock)
        url = path.replace("{id}", str(user_id))
        before = await state_of(admin, database_url)

        refusals: list[httpx.Response] = [
            await admin.call(method, url, None, **sent),
            await admin.call(method, url, admin.revoked, **sent),
            await admin.call(method, url, "dwa_" + "A" * 43, **sent),  # well-formed, unknown
            await admin.call(method, url, admin.write[:-1], **sent),  # malformed
        ]
        refusals.append(await admin.call(method, url, token, **sent))  # a session token as a key
        # The session cookie, with its CSRF token and the right origin: it is not read here.
        csrf = csrf_token_of(admin.app.state.services.csrf_key, token)
        cookie = {
            "Cookie": f"{cookie_name(True)}={token}",
            CSRF_HEADER: csrf,
            "Origin": "http://testserver",
        }
        refusals.append(
            await admin.call(method, url, None, **{**sent, "headers": {**sent.get("headers", {}), **cookie}})
        )
        for refused in refusals:
            assert (refused.status_code, refused.json()) == (401, INVALID_KEY), refused.text
            assert refused.headers["WWW-Authenticate"] == "Bearer"
            assert refused.headers["Cache-Control"] == "no-store"

        as_reader = await admin.call(method, url, admin.read, **sent)
        if writes:
            assert (as_reader.status_code, as_reader.json()) == (403, READ_ONLY)
            assert await state_of(admin, database_url) == before  # nothing refused changed anything
        else:
            assert as_reader.status_code == 200, as_reader.text

        as_writer = await admin.call(method, url, admin.write, **sent)
        assert as_writer.status_code == 200, as_writer.text
        assert as_writer.json()["success"] is True
        if writes:
            assert await state_of(admin, database_url) != before


async def test_an_admin_key_is_never_a_session(database_url: str) -> None:
    async with admin_app(database_url) as admin:
        await register(admin.client)
        for key in (admin.write, admin.read):
            for method, path in (
                ("GET", "/session"),
                ("GET", "/sessions"),
                ("GET", "/mfa"),
                ("POST", "/logout/all"),
            ):
                answer = await admin.call(method, path, key)
                assert (answer.status_code, answer.json()["code"]) == (401, "invalid_session"), path
            cookie = {"Cookie": f"{cookie_name(True)}={key}"}
            answer = await admin.client.get("/session", headers=cookie)
            assert (answer.status_code, answer.json()["code"]) == (401, "invalid_session")
        assert (
            await admin.call("POST", "/logout", admin.write)
        ).status_code == 200  # idempotent, ends nothing
        assert (await admin.call("GET", "/admin/users", admin.write)).status_code == 200


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_each_key_has_a_rate_limit_of_its_own(
    request: pytest.FixtureRequest, database_url: str, clock: FakeClock, backend: str
) -> None:
    counters: dict[str, object] = {}
    if backend == "redis":  # where the throttle counts, there the keys' calls are counted too
        counters = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    async with admin_app(database_url, clock, throttle_admin_requests=3, **counters) as admin:
        user_id = await register(admin.client)
        for _ in range(3):
            assert (await admin.call("GET", "/admin/users", admin.read)).status_code == 200
        over = await admin.call("GET", "/admin/users", admin.read)
        assert over.status_code == 429
        assert over.json() == {
            "success": False,
            "error": "Too many attempts",
            "code": "rate_limited",
            "retryAfter": int(over.headers["Retry-After"]),
        }
        assert 1 <= int(over.headers["Retry-After"]) <= 60
        # Over its limit, a key is refused before its scope is looked at; another key is not affected.
        refused = await admin.call("POST", f"/admin/users/{user_id}/disable", admin.read)
        assert refused.status_code == 429
        assert (await admin.call("GET", "/admin/users", admin.write)).status_code == 200
        clock.advance(minutes=1)
        assert (await admin.call("GET", "/admin/users", admin.read)).status_code == 200
        limited = await admin.events(event="throttle.rejected")
        assert {(e["detail"]["scope"], e["detail"]["key"]) for e in limited} == {("admin_key", "dashboard")}
    in_table = await fetch(database_url, "SELECT key FROM rate_windows WHERE key LIKE 'admin-key:%'")
    assert sorted(in_table) == ([] if backend == "redis" else [("admin-key:dashboard",), ("admin-key:ops",)])


async def test_every_call_is_an_audit_event_with_the_keys_name(database_url: str, clock: FakeClock) -> None:
    async with admin_app(database_url, clock) as admin:
        user_id = await register(admin.client)
        await admin.call("GET", "/admin/users?query=ada&cursor=", admin.read)
        await admin.call("POST", f"/admin/users/{user_id}/disable", admin.read)
        await admin.call("POST", f"/admin/users/{user_id}/disable", admin.write)
        await admin.call("POST", f"/admin/users/{user_id}/enable", admin.revoked)
        await admin.call("GET", "/admin/users/0", admin.read)
        await admin.call("GET", "/admin/users/999", admin.read)
        calls = await admin.events(event="admin.api_call")
        disabled = await admin.events(event="admin.user_disabled")

    shown = [
        (e["detail"]["key"], e["detail"]["method"], e["detail"]["route"], e["detail"]["status"], e["userId"])
        for e in reversed(calls)
    ]
    assert shown == [
        ("dashboard", "GET", "/admin/users", 200, None),
        ("dashboard", "POST", "/admin/users/{user_id}/disable", 403, user_id),
        ("ops", "POST", "/admin/users/{user_id}/disable", 200, user_id),
        (None, "POST", "/admin/users/{user_id}/enable", 401, user_id),
        ("dashboard", "GET", "/admin/users/{user_id}", 400, None),
        ("dashboard", "GET", "/admin/users/{user_id}", 404, 999),
    ]
    assert {e["clientAddress"] for e in calls} == {"127.0.0.1"}
    (event,) = disabled
    assert (event["userId"], event["detail"]["key"], event["detail"]["via"]) == (user_id, "ops", "api")


async def test_keys_never_reach_a_log_line_an_error_or_the_database(
    database_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with admin_app(database_url, clock, throttle_admin_requests=3) as admin:
        user_id = await register(admin.client)
        answers = []
        for key in (admin.write, admin.read, admin.revoked, admin.write[:-1], admin.write + "x"):
            for method, path in (
                ("GET", "/admin/users"),
                ("POST", f"/admin/users/{user_id}/unlock"),
                ("GET", "/admin/audit?user=nobody@example.com"),
                ("GET", "/admin/nothing-here"),
                ("GET", f"/admin/users/{user_id}"),  # the 4th call of a key: over its limit
                ("GET", "/session"),
            ):
                answers.append(await admin.call(method, path, key))
        await admin.app.state.services.audit_sink.flush()
        secrets = [key[4:] for key in (admin.write, admin.read, admin.revoked)]

        stored = json.dumps(
            [
                repr(row)
                for table in ("audit_events", "admin_keys", "rate_windows", "attempts")
                for row in await fetch(database_url, f"SELECT * FROM {table}")  # noqa: S608
            ]
        )
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "admin.api_call" in logged and "ops" in logged  # the name is there, the key is not
    assert {a.status_code for a in answers} >= {200, 401, 403, 404, 429}
    for secret in secrets:
        assert secret not in logged
        assert secret not in stored
        assert all(secret not in a.text and secret not in str(a.headers) for a in answers)
