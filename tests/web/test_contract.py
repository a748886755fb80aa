"""The JSON contract of DESIGN.md, body for body and header for header."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import EMAIL, PASSWORD, SEED_400, app_for, bearer, login, register

JSON = "application/json; charset=utf-8"
SEED_401 = b'{"success":false,"error":"Invalid credentials"}'
INVALID_SESSION = {"success": False, "error": "Invalid session", "code": "invalid_session"}


def assert_api_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == JSON
    assert response.headers["cache-control"] == "no-store"


async def test_login_success_body(client: httpx.AsyncClient) -> None:
    user_id = await register(client, "Ada.Lovelace@Example.com")
    response = await client.post("/login", json={"email": "ada.lovelace@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert_api_headers(response)
    body = response.json()
    assert list(body) == ["success", "sessionToken", "user"]
    assert body["success"] is True
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body["sessionToken"])
    assert body["user"] == {"id": user_id, "email": "Ada.Lovelace@Example.com"}  # the stored email


async def test_login_400_is_the_seeds_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", json={"email": EMAIL})
    assert response.status_code == 400
    assert response.content == SEED_400
    assert_api_headers(response)


async def test_login_401_is_the_seeds_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 401
    assert response.content == SEED_401
    assert_api_headers(response)


async def test_unknown_email_wrong_password_and_disabled_account_look_the_same(
    client: httpx.AsyncClient, app: object
) -> None:
    await register(client, "known@example.com")
    await register(client, "disabled@example.com")
    services = app.state.services  # type: ignore[attr-defined]
    await services.admin.disable_user("disabled@example.com")

    attempts = [
        {"email": "unknown@example.com", "password": PASSWORD},
        {"email": "known@example.com", "password": "wrong " + PASSWORD},
        {"email": "disabled@example.com", "password": PASSWORD},
    ]
    answers = [await client.post("/login", json=attempt) for attempt in attempts]
    assert {a.status_code for a in answers} == {401}
    assert {a.content for a in answers} == {SEED_401}
    assert len({tuple(sorted(a.headers.items())) for a in answers}) == 1


async def test_register_success_and_error_bodies(client: httpx.AsyncClient) -> None:
    response = await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 201
    assert_api_headers(response)
    assert response.json() == {"success": True, "user": {"id": 1, "email": EMAIL}}

    again = await client.post("/register", json={"email": EMAIL.upper(), "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    ("email", "password", "code"),
    [
        (EMAIL, "too short", "password_too_short"),
        (EMAIL, "x9" * 513, "password_too_long"),
        (EMAIL, "password123456789", "password_common"),
        (EMAIL, "ada@example.com is me", "password_context"),
        ("not an email", PASSWORD, "email_invalid"),
        ("a" * 250 + "@example.com", PASSWORD, "email_invalid"),
    ],
)
async def test_register_says_which_rule_refused(
    client: httpx.AsyncClient, email: str, password: str, code: str
) -> None:
    response = await client.post("/register", json={"email": email, "password": password})
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert body["error"]  # a sentence the user can act on
    assert password not in response.text


async def test_register_ignores_unknown_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/register", json={"email": EMAIL, "password": PASSWORD, "id": 999, "role": "admin", "disabled": True}
    )
    assert response.status_code == 201
    assert response.json()["user"] == {"id": 1, "email": EMAIL}
    await login(client)  # not disabled


async def test_session_check_body(client: httpx.AsyncClient) -> None:
    user_id = await register(client)
    token = await login(client)
    response = await client.get("/session", headers=bearer(token))
    assert response.status_code == 200
    assert_api_headers(response)
    body = response.json()
    assert list(body) == ["success", "user", "session"]
    assert body["user"] == {"id": user_id, "email": EMAIL}
    session = body["session"]
    assert set(session) >= {"id", "createdAt", "expiresAt"}
    assert session["createdAt"] == "2026-01-01T12:00:00Z"
    assert session["expiresAt"] == "2026-01-02T12:00:00Z"  # the seed's one day
    assert token not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "A" * 43},
        {"Authorization": "Bearer not-a-token"},
    ],
)
async def test_session_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/session", headers=headers)
    assert response.status_code == 401
    assert response.json() == INVALID_SESSION
    assert response.headers["www-authenticate"] == "Bearer"
    assert_api_headers(response)


def answer_headers(response: httpx.Response) -> dict[str, str]:
    """The headers every JSON answer shares (not its length, date or challenge)."""
    return {
        k: v for k, v in response.headers.items() if k not in {"content-length", "date", "www-authenticate"}
    }


@pytest.mark.parametrize("cors", ["", "https://app.example.com"], ids=["first", "inside-cors"])
async def test_hot_answers_carry_the_headers_of_every_other_answer(database_url: str, cors: str) -> None:
    """GET /session and POST /login are answered before FastAPI's middlewares, or with an
    allow-list inside them (web/fastpath.py), and add their headers either way."""
    origin = {"Origin": "https://app.example.com"}
    async with app_for(database_url, cors_origins=cors) as (_, client):
        routed = answer_headers(await client.get("/sessions", headers=origin))  # 401, every middleware
        assert routed["x-frame-options"] == "DENY" and "content-security-policy" in routed
        assert ("access-control-allow-origin" in routed) == bool(cors)
        await register(client)
        signed_in = await client.post("/login", json={"email": EMAIL, "password": PASSWORD}, headers=origin)
        wrong = await client.post("/login", json={"email": EMAIL, "password": "x" + PASSWORD}, headers=origin)
        malformed = await client.post(
            "/login", content=b"{not json", headers={"Content-Type": "application/json", **origin}
        )
        token = signed_in.json()["sessionToken"]
        valid = await client.get("/session", headers={**bearer(token), **origin})
        invalid = await client.get("/session", headers=origin)
    answers = [signed_in, wrong, malformed, valid, invalid]
    assert [answer.status_code for answer in answers] == [200, 401, 400, 200, 401]
    assert all(answer_headers(answer) == routed for answer in answers)


@pytest.mark.parametrize("cors", ["", "https://app.example.com"], ids=["first", "inside-cors"])
@pytest.mark.parametrize(
    ("method", "path", "broken_call"), [("GET", "/session", "check"), ("POST", "/login", "login")]
)
async def test_a_bug_in_a_hot_answer_is_the_500_envelope(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    broken_call: str,
    cors: str,
) -> None:
    """With an allow-list too: a bug once escaped to Starlette's outermost handler there, whose 500
    carried neither the security headers nor CORS's."""

    async def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    origin = {"Origin": "https://app.example.com"}
    async with app_for(database_url, cors_origins=cors) as (app, client):
        monkeypatch.setattr(app.state.services.auth, broken_call, broken)
        response = await client.request(
            method, path, headers={**bearer("A" * 43), **origin}, json={"email": EMAIL, "password": PASSWORD}
        )
        assert response.status_code == 500
        assert response.json() == {"success": False, "error": "Internal error", "code": "internal"}
        assert answer_headers(response) == answer_headers(await client.get("/sessions", headers=origin))
    assert "unhandled error" in caplog.text and "a bug" not in response.text


@pytest.mark.parametrize("cors", ["", "https://app.example.com"], ids=["first", "inside-cors"])
async def test_a_login_whose_client_left_is_not_a_bug(
    database_url: str, cors: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client gone while its login's body is read gets no answer, and no error is logged."""
    messages = iter(
        [{"type": "http.request", "body": b'{"email":', "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict[str, object]:
        return next(messages)

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/login",
        "raw_path": b"/login",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    async with app_for(database_url, cors_origins=cors) as (app, _):
        await app(scope, receive, send)
    assert sent == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


@pytest.mark.parametrize("method", ["POST", "DELETE", "HEAD"])
async def test_only_get_checks_a_session(client: httpx.AsyncClient, method: str) -> None:
    # GET /session is answered ahead of routing (web/fastpath.py); other methods are routed.
    await register(client)
    response = await client.request(method, "/session", headers=bearer(await login(client)))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert_api_headers(response)


async def test_logout_is_idempotent(client: httpx.AsyncClient) -> None:
    await register(client)
    token = await login(client)
    for _ in range(2):
        response = await client.post("/logout", headers=bearer(token))
        assert response.status_code == 200
        assert response.json() == {"success": True}
    assert (await client.get("/session", headers=bearer(token))).status_code == 401
    assert (await client.post("/logout")).json() == {"success": True}


async def test_unknown_path_and_method_keep_the_envelope(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = await client.get("/logout")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"
    assert_api_headers(wrong)


async def test_openapi_documents_every_endpoint_and_error(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"/login", "/register", "/session", "/logout", "/healthz"} <= set(paths)
    login_op = paths["/login"]["post"]
    assert set(login_op["responses"]) >= {"200", "400", "401", "413", "503"}
    body_schema = login_op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body_schema["required"]) == {"email", "password"}
    assert set(paths["/register"]["post"]["responses"]) >= {"201", "400", "409"}
    assert set(paths["/session"]["get"]["responses"]) >= {"200", "401"}


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("cors", ["", "https://app.example.com"], ids=["first", "inside-cors"])
async def test_a_refused_login_carries_the_headers_of_other_answers(database_url: str, cors: str) -> None:
    """A login refused while hashing is full is answered before FastAPI (or inside CORS), yet alike."""
    origin = {"Origin": "https://app.example.com"}
    async with app_for(database_url, cors_origins=cors, hash_workers=1, hash_queue=0) as (app, client):
        routed = answer_headers(await client.get("/sessions", headers=origin))
        with app.state.services.pool.slot():  # the one hash slot, taken
            # A body the route would refuse with 400: a 503 shows it was refused before it was read.
            malformed = {"Content-Type": "application/json", **origin}
            refused = await client.post("/login", content=b"{not json", headers=malformed)
    assert (refused.status_code, refused.json()["code"]) == (503, "overloaded")
    headers = answer_headers(refused)
    assert headers.pop("retry-after") == "1"
    assert headers == routed
    assert ("access-control-allow-origin" in headers) == bool(cors)
