"""Managing second factors takes a session that proved one (issue: aal1 sessions adding factors):
while the account has a second factor (the app, or a passkey), a session of assurance level 1 may
not add, remove or renew one, password or not: 403 aal2_required. An account with none enrols its
first from level 1, as before. Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from tests.conftest import PASSWORD, FakeClock, bearer, login, register
from tests.web.test_mfa import STEP, password_step, second_step, turn_app_on
from tests.web.test_passkeys import add, key, listed, login_options, passkey_app, passkey_login, session_of


@pytest.fixture
async def started(database_url: str, clock: FakeClock) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with passkey_app(database_url, clock) as app_and_client:
        yield app_and_client


AAL2_REQUIRED = {"success": False, "error": "Sign in with your second factor first", "code": "aal2_required"}


async def refused(response: httpx.Response) -> None:
    assert (response.status_code, response.json()) == (403, AAL2_REQUIRED), response.text


async def test_an_old_level_one_session_cannot_add_renew_or_remove_a_factor(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    old = await login(client)  # level 1: opened before the app was on
    secret, codes = await turn_app_on(client, clock, await login(client))
    assert (await session_of(client, old))["aal"] == 1

    # The reviewer's attack: a passkey added with the password alone, signing in at level 2.
    options = await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(old))
    await refused(options)
    await refused(await client.post("/mfa/recovery-codes", json={"password": PASSWORD}, headers=bearer(old)))
    code = pyotp.TOTP(secret).at(clock())
    off = await client.post(
        "/mfa/totp/disable", json={"password": PASSWORD, "code": code}, headers=bearer(old)
    )
    await refused(off)

    # A level-2 session (the app's code at sign-in) adds a passkey; the old one may not remove it.
    strong = (await second_step(client, await password_step(client), code=code)).json()["sessionToken"]
    assert (await session_of(client, strong))["aal"] == 2
    passkey = await add(client, strong, key())
    await refused(
        await client.request(
            "DELETE", f"/passkeys/{passkey['id']}", json={"password": PASSWORD}, headers=bearer(old)
        )
    )
    assert [p["id"] for p in await listed(client, strong)] == [passkey["id"]]
    assert (await client.get("/mfa", headers=bearer(strong))).json()["recoveryCodesLeft"] == 10
    assert codes  # the old set still stands


async def test_a_finish_begun_before_the_account_had_a_factor_is_refused(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    old = await login(client)
    options = await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(old))
    assert options.status_code == 200  # no factor yet: level 1 may start its first
    await turn_app_on(client, clock, await login(client))

    credential = key().create(options.json()["options"])
    await refused(await client.post("/passkeys", json={"credential": credential}, headers=bearer(old)))
    assert await listed(client, old) == []


async def test_a_passkey_counts_as_a_factor(client: httpx.AsyncClient) -> None:
    await register(client)
    old = await login(client)
    authenticator = key()
    await add(client, await login(client), authenticator)  # the first factor, from level 1

    await refused(await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(old)))
    await refused(await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(old)))
    signed_in = await passkey_login(client, authenticator.get(await login_options(client)))
    strong = signed_in.json()["sessionToken"]
    assert (await session_of(client, strong))["aal"] == 2
    assert (
        await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(strong))
    ).status_code == 200


async def test_a_level_two_session_manages_every_factor(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await register(client)
    secret, _ = await turn_app_on(client, clock, await login(client))
    strong = (
        await second_step(client, await password_step(client), code=pyotp.TOTP(secret).at(clock()))
    ).json()["sessionToken"]
    clock.advance(seconds=STEP)

    renewed = await client.post("/mfa/recovery-codes", json={"password": PASSWORD}, headers=bearer(strong))
    assert renewed.status_code == 200, renewed.text
    passkey = await add(client, strong, key())
    removed = await client.request(
        "DELETE", f"/passkeys/{passkey['id']}", json={"password": PASSWORD}, headers=bearer(strong)
    )
    assert removed.status_code == 200, removed.text
    code = pyotp.TOTP(secret).at(clock())
    off = await client.post(
        "/mfa/totp/disable", json={"password": PASSWORD, "code": code}, headers=bearer(strong)
    )
    assert off.status_code == 200, off.text
    assert (await session_of(client, await login(client)))["aal"] == 1  # no factor left: the password alone


async def test_an_account_without_a_factor_enrols_from_level_one(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    session = await login(client)
    assert (await session_of(client, session))["aal"] == 1
    await add(client, session, key())  # its first factor: a passkey, from level 1
    await register(client, "grace@example.com")
    other = await login(client, "grace@example.com")
    await turn_app_on(client, clock, other)  # or the app, from level 1
    assert (await client.get("/mfa", headers=bearer(other))).json()["totp"] is True


async def test_openapi_documents_the_refusal_on_every_factor_change(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    changes = [
        ("/mfa/totp", "post"),
        ("/mfa/totp/confirm", "post"),
        ("/mfa/totp/disable", "post"),
        ("/mfa/recovery-codes", "post"),
        ("/passkeys/options", "post"),
        ("/passkeys", "post"),
        ("/passkeys/{passkey_id}", "delete"),
    ]
    for path, method in changes:
        forbidden = paths[path][method]["responses"]["403"]["description"]
        assert "aal2_required" in forbidden and "csrf" in forbidden, path
    assert "aal2_required" not in paths["/passkeys/{passkey_id}"]["patch"]["responses"]["403"]["description"]
