"""Paths as a client finds them: no slash redirects, the root, unknown pages, the favicon, HEAD /healthz."""

from __future__ import annotations

import httpx
import pytest

JSON = "application/json; charset=utf-8"
NOT_FOUND = {"success": False, "error": "Not found", "code": "not_found"}


@pytest.mark.parametrize("path", ["/session/", "/login/", "/sessions/", "/healthz/", "/account/"])
async def test_a_trailing_slash_is_not_found_never_a_redirect_to_the_clients_host(
    client: httpx.AsyncClient, path: str
) -> None:
    """Starlette's slash redirect built its Location from the Host header: an open redirect."""
    response = await client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == NOT_FOUND
    assert response.headers["content-type"] == JSON
