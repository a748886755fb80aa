"""Bad input: a 4xx with the envelope, never a 500, never a half-written row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from doorward.config import Settings
from tests.conftest import PASSWORD, SEED_400
from tests.db import fetch

MALFORMED: list[tuple[str, bytes, str]] = [
    ("bad json", b'{"email": "a@b.c", "password": ', "application/json"),
    ("empty body", b"", "application/json"),
    ("array", b'["a@b.c", "pw"]', "application/json"),
    ("string", b'"a@b.c"', "application/json"),
    ("null", b"null", "application/json"),
    ("missing password", b'{"email": "a@b.c"}', "application/json"),
    ("empty strings", b'{"email": "", "password": ""}', "application/json"),
    ("numbers", b'{"email": 1, "password": 2}', "application/json"),
    ("booleans", b'{"email": true, "password": false}', "application/json"),
    ("nulls", b'{"email": null, "password": null}', "application/json"),
    ("objects", b'{"email": {"$ne": ""}, "password": {"$ne": ""}}', "application/json"),
    ("lists", b'{"email": ["a@b.c"], "password": ["x"]}', "application/json"),
    ("huge integer", b'{"email": ' + b"9" * 5000 + b', "password": "x"}', "application/json"),
    ("huge float", b'{"email": 1e999, "password": "x"}', "application/json"),
    ("deep nesting", b'{"email": ' + b"[" * 20000 + b"]" * 20000 + b', "password": "x"}', "application/json"),
    ("lone surrogate", b'{"email": "a@b.c", "password": "\\ud800 and more text"}', "application/json"),
    ("NUL", b'{"email": "a\\u0000@b.c", "password": "correct horse battery"}', "application/json"),
    ("over-long email", b'{"email": "' + b"a" * 400 + b'@b.c", "password": "x"}', "application/json"),
    ("not UTF-8", b'{"email": "\xff\xfe@b.c", "password": "x"}', "application/json"),
    ("text/plain", b'{"email": "a@b.c", "password": "x"}', "text/plain"),
    ("form", b"email=a%40b.c&password=x", "application/x-www-form-urlencoded"),
    ("no content type", b'{"email": "a@b.c", "password": "x"}', ""),
]


async def user_count(settings: Settings) -> int:
    ((count,),) = await fetch(settings.database_url, "SELECT count(*) FROM users")
    return int(count)


@pytest.mark.parametrize(("name", "body", "content_type"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_login_is_the_seeds_400(
    client: httpx.AsyncClient, name: str, body: bytes, content_type: str
) -> None:
    response = await client.post("/login", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, name
    assert response.content == SEED_400


@pytest.mark.parametrize(("name", "body", "content_type"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_registration_is_400_and_writes_nothing(
    client: httpx.AsyncClient, settings: Settings, name: str, body: bytes, content_type: str
) -> None:
    response = await client.post("/register", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, name
    payload = response.json()
    assert payload["success"] is False
    assert payload["code"] in {"invalid_request", "email_invalid"}
    assert await user_count(settings) == 0


@pytest.mark.parametrize("path", ["/login", "/register"])
async def test_oversized_body_is_413_before_parsing(client: httpx.AsyncClient, path: str) -> None:
    big = b'{"email": "a@b.c", "password": "' + b"x" * 70_000 + b'"}'
    response = await client.post(path, content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {
        "success": False,
        "error": "Request body too large",
        "code": "payload_too_large",
    }


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@b.c", "password": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post("/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


@pytest.mark.parametrize(
    "email",
    ["ａｄａ@ｅｘａｍｐｌｅ.ｃｏｍ", "ADA@EXAMPLE.COM", "  ada@example.com\t"],
    ids=["fullwidth", "upper", "spaces"],
)
async def test_odd_unicode_emails_find_the_same_account(client: httpx.AsyncClient, email: str) -> None:
    assert (
        await client.post("/register", json={"email": "ada@example.com", "password": PASSWORD})
    ).status_code == 201
    response = await client.post("/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    again = await client.post("/register", json={"email": email, "password": PASSWORD})
    assert again.status_code == 409


async def test_unicode_passwords_are_normalised(client: httpx.AsyncClient) -> None:
    composed = "café crème brûlée au lait"
    decomposed = "cafe\u0301 cre\u0300me bru\u0302le\u0301e au lait"
    assert (
        await client.post("/register", json={"email": "u@example.com", "password": composed})
    ).status_code == 201
    response = await client.post("/login", json={"email": "u@example.com", "password": decomposed})
    assert response.status_code == 200
