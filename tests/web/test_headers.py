"""Transport and embedding headers on every answer: HSTS behind an https public URL, CORP always."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from tests.conftest import EMAIL, PASSWORD, app_for, bearer, make_settings, register

ONE_YEAR = 365 * 24 * 3600


async def every_kind_of_answer(client: httpx.AsyncClient) -> list[httpx.Response]:
    """A fast-path answer of each route, a routed JSON answer, a page, a static file, a 404, the docs
    (of an app with DOORWARD_API_DOCS)."""
    await register(client)
    signed_in = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    token = signed_in.json()["sessionToken"]
    answers = [
        signed_in,
        await client.get("/session", headers=bearer(token)),
        await client.get("/session"),
        await client.get("/sessions", headers=bearer(token)),
        await client.get("/healthz"),
        await client.get("/login"),
        await client.get("/static/doorward.css"),
        await client.get("/nope"),
        await client.get("/openapi.json"),
        await client.get("/docs"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 200, 200, 200, 200, 404, 200, 200]
    return answers


@pytest.mark.parametrize("cors", ["", "https://app.example.com"], ids=["first", "inside-cors"])
async def test_https_public_url_sends_hsts_on_every_answer(database_url: str, cors: str) -> None:
    async with app_for(
        database_url, public_url="https://id.example.com", cors_origins=cors, api_docs=True
    ) as (_, client):
        answers = await every_kind_of_answer(client)
    for answer in answers:
        assert answer.headers.get("strict-transport-security") == f"max-age={ONE_YEAR}", answer.request.url


async def test_hsts_max_age_and_preload_are_settings(database_url: str) -> None:
    async with app_for(
        database_url,
        public_url="https://id.example.com",
        hsts_max_age="P730D",
        hsts_preload=True,
        api_docs=True,
    ) as (_, client):
        answers = await every_kind_of_answer(client)
    expected = f"max-age={2 * ONE_YEAR}; includeSubDomains; preload"
    assert {answer.headers.get("strict-transport-security") for answer in answers} == {expected}


async def test_plain_http_public_url_sends_no_hsts(database_url: str) -> None:
    """Browsers ignore HSTS over plain HTTP; and a development http://127.0.0.1 must not pin https."""
    async with app_for(database_url, public_url="http://127.0.0.1:8000", api_docs=True) as (_, client):
        answers = await every_kind_of_answer(client)
    assert not [answer for answer in answers if "strict-transport-security" in answer.headers]


def test_preload_needs_a_year(sqlite_url: str) -> None:
    """hstspreload.org refuses a domain whose max-age is under a year: say so at start, not later."""
    with pytest.raises(ValidationError, match="at least a year"):
        make_settings(sqlite_url, hsts_preload=True, hsts_max_age="86400")


@pytest.mark.parametrize("cors", ["", "https://app.example.com"], ids=["first", "inside-cors"])
async def test_every_answer_is_same_origin_for_embedding(database_url: str, cors: str) -> None:
    """Cross-Origin-Resource-Policy: another site may not load doorward's answers as an image or a script."""
    async with app_for(database_url, cors_origins=cors, api_docs=True) as (_, client):
        answers = await every_kind_of_answer(client)
    for answer in answers:
        assert answer.headers.get("cross-origin-resource-policy") == "same-origin", answer.request.url


@pytest.mark.parametrize("cors", ["", "https://app.example.com"], ids=["first", "inside-cors"])
async def test_a_routed_bug_carries_the_headers_of_every_other_answer(
    database_url: str, monkeypatch: pytest.MonkeyPatch, cors: str
) -> None:
    """Starlette answers a bug in its outermost middleware, which ran outside the security headers'
    and CORS's: a routed bug's 500 carried neither (the fast path's got both already)."""

    async def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    origin = {"Origin": "https://app.example.com"}
    async with app_for(database_url, public_url="https://id.example.com", cors_origins=cors) as (app, client):
        routed = await client.get("/sessions", headers=origin)
        monkeypatch.setattr(app.state.services.auth, "logout", broken)
        # The exception goes on up after the 500 is sent (for the server to log): let it, and read the 500.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
            failed = await raw.post("/logout", headers={**bearer("A" * 43), **origin})
    assert failed.json() == {"success": False, "error": "Internal error", "code": "internal"}
    expected = {k: v for k, v in routed.headers.items() if k not in {"content-length", "www-authenticate"}}
    assert {k: v for k, v in failed.headers.items() if k != "content-length"} == expected
