"""/openapi.json says what the server does (issue 21, item 11), and the viewers that render it are
opt-in (item 10). tests/web/test_schema.py fuzzes every operation against it."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import app_for, bearer, login, register
from tests.web.admin import admin_app

SESSION_OPERATIONS = {
    ("get", "/session"),
    ("get", "/sessions"),
    ("delete", "/sessions/{session_id}"),
    ("post", "/logout/all"),
    ("post", "/password/change"),
    ("post", "/email/change"),
    ("post", "/account/delete"),
    ("get", "/mfa"),
    ("post", "/mfa/totp"),
    ("post", "/mfa/totp/confirm"),
    ("post", "/mfa/totp/disable"),
    ("post", "/mfa/recovery-codes"),
    ("post", "/passkeys/options"),
    ("get", "/passkeys"),
    ("post", "/passkeys"),
    ("patch", "/passkeys/{passkey_id}"),
    ("delete", "/passkeys/{passkey_id}"),
}
"""What answers 401 invalid_session without a session (tests/web/test_mfa.py and others show it)."""


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items()]


async def test_operations_that_take_a_session_name_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    """Swagger UI's Authorize button, and a client generator's idea of which calls need a token."""
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    bearer_schemes = [
        name for name, s in schemes.items() if (s["type"], s.get("scheme")) == ("http", "bearer")
    ]
    cookie = [name for name, s in schemes.items() if (s["type"], s.get("in")) == ("apiKey", "cookie")]
    assert sorted(bearer_schemes) == ["AdminKey", "sessionToken"] and len(cookie) == 1
    session = [{"sessionToken": []}, {cookie[0]: []}]
    for method, path, op in operations(spec):
        if path.startswith("/admin/"):
            assert op["security"] == [{"AdminKey": []}], (method, path)  # never a session
        elif (method, path) in SESSION_OPERATIONS:
            assert op["security"] == session, (method, path)
        elif (method, path) == ("post", "/logout"):
            assert op["security"] == [*session, {}]  # a token is optional: logout always succeeds
        else:
            assert "security" not in op, (method, path)


async def test_no_operation_documents_a_422(client: httpx.AsyncClient) -> None:
    """FastAPI's own validation error is answered as the envelope's 400 invalid_request, never 422."""
    spec = (await client.get("/openapi.json")).json()
    assert [(m, p) for m, p, op in operations(spec) if "422" in op["responses"]] == []
    assert {"HTTPValidationError", "ValidationError"}.isdisjoint(spec["components"]["schemas"])
    # Any string is a session id: ending one can say 404, never 400.
    assert set(spec["paths"]["/sessions/{session_id}"]["delete"]["responses"]) == {
        "200",
        "401",
        "403",
        "404",
        "503",
    }


@pytest.mark.parametrize("path", ["/password/reset/request", "/email/verify/resend"])
async def test_the_always_202_mail_requests_document_their_400(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.post(path, json={"email": 42})
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_request")
    spec = (await client.get("/openapi.json")).json()
    assert "400" in spec["paths"][path]["post"]["responses"]


async def test_every_json_body_over_the_limit_is_a_documented_413(database_url: str) -> None:
    async with admin_app(database_url, max_body_bytes=1024) as admin:
        client = admin.client
        await register(client)
        session = bearer(await login(client))
        spec = (await client.get("/openapi.json")).json()
        with_body = [(m, p, op) for m, p, op in operations(spec) if "requestBody" in op]
        assert len(with_body) >= 15
        for method, path, op in with_body:
            url = path.replace("{session_id}", "x").replace("{passkey_id}", "x")
            content_type = next(iter(op["requestBody"]["content"]))
            who = bearer(admin.write) if path.startswith("/admin/") else session
            answer = await client.request(
                method,
                url,
                content=b'{"a":"' + b"x" * 2000 + b'"}',
                headers={**who, "Content-Type": content_type},
            )
            assert (method, path, answer.status_code) == (method, path, 413)
            assert "413" in op["responses"], (method, path)


async def test_the_docs_viewers_are_off_unless_asked_for(database_url: str) -> None:
    async with app_for(database_url) as (_, client):
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            answer = await client.get(path)
            assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), path
        assert (await client.get("/openapi.json")).status_code == 200
    async with app_for(database_url, api_docs=True) as (_, client):
        for path in ("/docs", "/redoc"):
            answer = await client.get(path)
            assert answer.status_code == 200 and "/openapi.json" in answer.text, path


async def test_a_change_made_with_the_cookie_without_its_csrf_token_is_a_documented_403(
    database_url: str,
) -> None:
    async with app_for(database_url, base_url="https://testserver") as (_, client):
        await register(client)
        cookie = {"Cookie": f"__Host-doorward_session={await login(client)}", "Origin": "https://testserver"}
        spec = (await client.get("/openapi.json")).json()
        changes = [
            (m, p, op)
            for m, p, op in operations(spec)
            if m in {"post", "patch", "delete"} and {"sessionCookie": []} in op.get("security", [])
        ]
        assert len(changes) >= 10
        for method, path, op in changes:
            url = path.replace("{session_id}", "x").replace("{passkey_id}", "x")
            answer = await client.request(method, url, json={}, headers=cookie)
            assert (method, path, answer.status_code, answer.json()["code"]) == (method, path, 403, "csrf")
            assert "403" in op["responses"], (method, path)


async def test_the_mfa_policys_403_is_documented_where_it_answers(database_url: str) -> None:
    async with app_for(database_url, require_mfa=True) as (_, client):
        await register(client)
        session = bearer(await login(client))
        spec = (await client.get("/openapi.json")).json()
        calls = [
            ("get", "/sessions", None),
            ("delete", "/sessions/{session_id}", None),
            ("post", "/password/change", {"currentPassword": "x" * 20, "newPassword": "y" * 20}),
        ]
        for method, path, body in calls:
            url = path.replace("{session_id}", "x")
            answer = await client.request(method, url, json=body, headers=session)
            assert (answer.status_code, answer.json()["code"]) == (403, "mfa_enrollment_required"), path
            assert "403" in spec["paths"][path][method]["responses"], path
