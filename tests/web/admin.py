"""What the admin API's tests share: an app with admin keys of each kind, and calls made with them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from doorward.core.models import AdminScope
from tests.conftest import FakeClock, app_for, bearer


@dataclass
class AdminApp:
    """The app, its client, and three keys made the way ``doorward admin keys create`` makes them:
    ``write`` (named "ops"), ``read`` ("dashboard") and ``revoked`` (a write key, "retired")."""

    app: FastAPI
    client: httpx.AsyncClient
    write: str
    read: str
    revoked: str

    async def call(self, method: str, path: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}), **(bearer(key) if key is not None else {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def events(self, **params: str) -> list[dict[str, Any]]:
        """Every stored audit event matching ``params``, newest first, through the API's own query
        (written out first: the sink writes in batches); the call itself is recorded after it answers."""
        await self.app.state.services.audit_sink.flush()
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.call(
                "GET", "/admin/audit", self.read, params={**params, "limit": "200", **_cursor(cursor)}
            )
            assert page.status_code == 200, page.text
            found += page.json()["events"]
            cursor = page.json()["nextCursor"]
            if cursor is None:
                return found


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


@asynccontextmanager
async def admin_app(
    database_url: str, clock: FakeClock | None = None, **overrides: object
) -> AsyncIterator[AdminApp]:
    """``app_for`` with the three keys made."""
    async with app_for(database_url, clock, **overrides) as (app, client):
        keyring = app.state.services.keyring
        _, write = await keyring.create("ops", AdminScope.WRITE)
        _, read = await keyring.create("dashboard", AdminScope.READ)
        _, revoked = await keyring.create("retired", AdminScope.WRITE)
        await keyring.revoke("retired")
        yield AdminApp(app, client, write, read, revoked)
