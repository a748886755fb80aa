"""Passkeys through the JSON API (issue 20), on both databases, answered by the software
authenticator of tests/authenticator.py: every row of the contract, the sessions' aal/amr, the
second step, the negative cases (replay, another origin, another ceremony's challenge, a removed
passkey, a disabled account, a sign count gone backwards), the per-client limit on options, the
MFA policy's last factor, CSRF with the cookie, malformed bodies, and /openapi.json."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from doorward.web.cookies import cookie_name
from doorward.web.security import CSRF_HEADER, csrf_token_of
from tests.authenticator import SoftwareAuthenticator, b64url
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.db import fetch
from tests.web.test_mfa import (
    CSRF_REFUSED,
    INVALID_REQUEST,
    MFA_INVALID,
    MFA_REQUIRED,
    MFA_TOKEN_INVALID,
    SEED_401,
    STEP,
    mails_in,
    malformed,
    password_step,
)

ORIGIN = "https://testserver"  # the in-process client's origin, and the relying party's
RP_ID = "testserver"
ID = re.compile(r"[A-Za-z0-9_-]{22}")
LAST_FACTOR = (
    b'{"success":false,"error":"This is your last second factor: add another before removing it",'
    b'"code":"last_factor"}'
)
NOT_FOUND = b'{"success":false,"error":"No such passkey","code":"passkey_not_found"}'


@asynccontextmanager
async def passkey_app(
    database_url: str, clock: FakeClock, **overrides: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_for(database_url, clock, base_url=ORIGIN, public_url=ORIGIN, **overrides) as started:
        yield started


@pytest.fixture
async def started(database_url: str, clock: FakeClock) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with passkey_app(database_url, clock) as app_and_client:
        yield app_and_client


def key(**options: Any) -> SoftwareAuthenticator:
    return SoftwareAuthenticator(RP_ID, ORIGIN, **options)


async def creation_options(client: httpx.AsyncClient, session: str) -> dict[str, Any]:
    response = await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(session))
    assert response.status_code == 200, response.text
    return dict(response.json()["options"])


async def add(
    client: httpx.AsyncClient, session: str, authenticator: SoftwareAuthenticator, name: str | None = None
) -> dict[str, Any]:
    """Add ``authenticator``'s credential to the session's account: the passkey's id in the answer."""
    credential = authenticator.create(await creation_options(client, session))
    body: dict[str, Any] = {"credential": credential} | ({"name": name} if name is not None else {})
    response = await client.post("/passkeys", json=body, headers=bearer(session))
    assert response.status_code == 201, response.text
    return dict(response.json()["passkey"])


async def with_passkey(client: httpx.AsyncClient, **options: Any) -> tuple[str, SoftwareAuthenticator, str]:
    """A registered account with one passkey: a session signed in with it (aal 2, the level that may
    change the account's factors now), the authenticator, the passkey's id."""
    await register(client)
    authenticator = key(**options)
    passkey_id = (await add(client, await login(client), authenticator))["id"]
    return await level_two(client, authenticator), authenticator, passkey_id


async def level_two(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> str:
    """A session signed in with ``authenticator``'s passkey, its user verified: aal 2."""
    response = await client.post(
        "/login/passkey", json={"credential": authenticator.get(await login_options(client))}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["sessionToken"])


async def login_options(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/login/passkey/options")
    assert response.status_code == 200, response.text
    return dict(response.json()["options"])


async def passkey_login(client: httpx.AsyncClient, credential: dict[str, Any]) -> httpx.Response:
    return await client.post("/login/passkey", json={"credential": credential})


async def session_of(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/session", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json()["session"])


async def listed(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get("/passkeys", headers=bearer(session))
    assert response.status_code == 200, response.text
    return list(response.json()["passkeys"])


async def audit_events(app: FastAPI, database_url: str) -> list[str]:
    await app.state.services.audit_sink.flush()
    return [row[0] for row in await fetch(database_url, "SELECT event FROM audit_events ORDER BY id")]


# --- adding, listing, renaming, removing ---------------------------------------------------------------


async def test_adding_a_passkey_takes_the_password_and_answers_the_contracts_bodies(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    session = await login(client)
    response = await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(session))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert list(response.json()) == ["success", "options"]
    options = response.json()["options"]
    assert options["rp"] == {"name": "doorward", "id": RP_ID}
    assert options["user"]["name"] == EMAIL
    assert options["excludeCredentials"] == []
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"

    authenticator = key()
    added = await client.post(
        "/passkeys",
        json={"credential": authenticator.create(options), "name": " Laptop "},
        headers=bearer(session),
    )
    assert added.status_code == 201
    body = added.json()
    assert list(body) == ["success", "passkey"]
    assert list(body["passkey"]) == ["id", "name", "createdAt", "lastUsedAt"]
    assert ID.fullmatch(body["passkey"]["id"])
    assert body["passkey"]["name"] == "Laptop"
    assert body["passkey"]["lastUsedAt"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["passkey"]["createdAt"])

    assert await listed(client, session) == [{**body["passkey"], "backedUp": False}]
    session = await level_two(client, authenticator)  # a factor now: the next takes a session with it
    again = await creation_options(client, session)
    assert [c["id"] for c in again["excludeCredentials"]] == [authenticator.id]
    assert again["user"]["id"] == options["user"]["id"]  # one user handle per account
    clock.advance(seconds=1)  # listed oldest first
    second = await add(client, session, key(synced=True))
    assert second["name"] == "Passkey 2"
    assert [p["backedUp"] for p in await listed(client, session)] == [False, True]


async def test_adding_needs_a_session_and_the_right_password(client: httpx.AsyncClient) -> None:
    await register(client)
    session = await login(client)
    assert (await client.post("/passkeys/options", json={"password": PASSWORD})).status_code == 401
    assert (await client.get("/passkeys")).status_code == 401
    wrong = await client.post(
        "/passkeys/options", json={"password": "not the password at all"}, headers=bearer(session)
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_current_password")


async def test_a_registration_that_fails_a_check_is_400_and_adds_nothing(client: httpx.AsyncClient) -> None:
    await register(client)
    session = await login(client)
    options = await creation_options(client, session)
    cases = [
        key().create(options, origin="https://evil.example"),
        key().create(options, rp_id="evil.example"),
        key().create(options, up=False),
        key().create(options, challenge=b64url(b"x" * 32)),
        {"id": "junk", "response": {}},
    ]
    for credential in cases:
        response = await client.post("/passkeys", json={"credential": credential}, headers=bearer(session))
        assert (response.status_code, response.json()["code"]) == (400, "passkey_invalid"), credential
    first = key()
    assert (
        await client.post("/passkeys", json={"credential": first.create(options)}, headers=bearer(session))
    ).status_code == 201
    session = await level_two(client, first)  # a factor now: the next takes a session with it
    replayed = await client.post(
        "/passkeys", json={"credential": key().create(options)}, headers=bearer(session)
    )
    assert (replayed.status_code, replayed.json()["code"]) == (
        400,
        "passkey_invalid",
    )  # the challenge is used
    assert len(await listed(client, session)) == 1


async def test_a_transport_named_again_and_again_is_kept_once(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """``transports`` is the browser's list, so any client's: seventy names (ten of each) made a string
    past the column's 128 characters, a 500 on PostgreSQL after every WebAuthn check had passed."""
    await register(client)
    session = await login(client)
    credential = key().create(await creation_options(client, session))
    names = ["usb", "nfc", "ble", "internal", "hybrid", "smart-card", "cable"]
    credential["response"]["transports"] = names * 10
    response = await client.post("/passkeys", json={"credential": credential}, headers=bearer(session))
    assert response.status_code == 201, response.text
    assert await fetch(database_url, "SELECT transports FROM passkeys") == [(" ".join(names),)]


async def test_another_accounts_registration_challenge_is_refused(client: httpx.AsyncClient) -> None:
    ada, _, _ = await with_passkey(client)
    await register(client, "grace@example.com")
    other = await login(client, "grace@example.com")
    stolen = key().create(await creation_options(client, ada))
    response = await client.post("/passkeys", json={"credential": stolen}, headers=bearer(other))
    assert (response.status_code, response.json()["code"]) == (400, "passkey_invalid")


async def test_an_account_has_at_most_twenty_passkeys(client: httpx.AsyncClient) -> None:
    session, _, _ = await with_passkey(client)
    for _ in range(19):
        await add(client, session, key())
    response = await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(session))
    assert (response.status_code, response.json()["code"]) == (409, "passkey_limit")


async def test_rename(client: httpx.AsyncClient) -> None:
    session, _, passkey_id = await with_passkey(client)
    renamed = await client.patch(f"/passkeys/{passkey_id}", json={"name": "Phone"}, headers=bearer(session))
    assert renamed.status_code == 200
    assert list(renamed.json()) == ["success", "passkey"]
    assert renamed.json()["passkey"]["name"] == "Phone"
    assert [p["name"] for p in await listed(client, session)] == ["Phone"]
    for name, code in (
        ("", "invalid_request"),
        ("x" * 65, "invalid_request"),
        ("a\u0007b", "invalid_request"),
    ):
        refused = await client.patch(f"/passkeys/{passkey_id}", json={"name": name}, headers=bearer(session))
        assert (refused.status_code, refused.json()["code"]) == (400, code), name
    for unknown in ("A" * 22, "nope"):
        missing = await client.patch(f"/passkeys/{unknown}", json={"name": "x"}, headers=bearer(session))
        assert (missing.status_code, missing.content) == (404, NOT_FOUND)


async def test_remove_takes_the_password_and_the_passkey_no_longer_signs_in(
    client: httpx.AsyncClient,
) -> None:
    session, authenticator, passkey_id = await with_passkey(client)
    wrong = await client.request(
        "DELETE",
        f"/passkeys/{passkey_id}",
        json={"password": "not the password at all"},
        headers=bearer(session),
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_current_password")
    missing = await client.request(
        "DELETE", f"/passkeys/{'A' * 22}", json={"password": PASSWORD}, headers=bearer(session)
    )
    assert (missing.status_code, missing.content) == (404, NOT_FOUND)

    removed = await client.request(
        "DELETE", f"/passkeys/{passkey_id}", json={"password": PASSWORD}, headers=bearer(session)
    )
    assert (removed.status_code, removed.content) == (200, b'{"success":true}')
    assert await listed(client, session) == []
    response = await passkey_login(client, authenticator.get(await login_options(client)))
    assert (response.status_code, response.content) == (401, SEED_401)
    await login(client)  # the password alone signs in again: no second factor left


async def test_adding_and_removing_are_mailed(database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    mail = tmp_path / "mail"
    async with passkey_app(database_url, clock, mail_dir=mail) as (app, client):
        session, _, passkey_id = await with_passkey(client)
        await client.request(
            "DELETE", f"/passkeys/{passkey_id}", json={"password": PASSWORD}, headers=bearer(session)
        )
        await app.state.services.outbox.drain()
    assert len(mails_in(mail)) == 2


# --- signing in with a passkey alone ------------------------------------------------------------------


async def test_login_options_name_no_account(client: httpx.AsyncClient) -> None:
    await with_passkey(client)
    response = await client.post("/login/passkey/options")
    assert response.status_code == 200
    options = response.json()["options"]
    assert list(response.json()) == ["success", "options"]
    assert options["rpId"] == RP_ID
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "preferred"
    assert len(options["challenge"]) >= 43
    assert (await login_options(client))["challenge"] != options["challenge"]


async def test_a_passkey_with_user_verification_signs_in_at_level_two(client: httpx.AsyncClient) -> None:
    _, authenticator, passkey_id = await with_passkey(client)
    response = await passkey_login(client, authenticator.get(await login_options(client)))
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["success", "sessionToken", "user"]
    assert response.content.startswith(b'{"success":true,"sessionToken":"')
    assert response.json()["user"] == {"id": 1, "email": EMAIL}
    session = await session_of(client, response.json()["sessionToken"])
    assert (session["aal"], session["amr"]) == (2, ["hwk", "user"])
    (item,) = await listed(client, response.json()["sessionToken"])
    assert item["id"] == passkey_id and item["lastUsedAt"] is not None


async def test_a_synced_passkey_says_swk(client: httpx.AsyncClient) -> None:
    _, authenticator, _ = await with_passkey(client, synced=True, counts=False)
    for _ in range(2):  # a counter that stays at 0 is no regression
        response = await passkey_login(client, authenticator.get(await login_options(client)))
        assert response.status_code == 200, response.text
    session = await session_of(client, response.json()["sessionToken"])
    assert (session["aal"], session["amr"]) == (2, ["swk", "user"])


async def test_without_user_verification_a_passkey_is_one_factor(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    session, authenticator, _ = await with_passkey(client)
    alone = await passkey_login(client, authenticator.get(await login_options(client), uv=False))
    assert alone.status_code == 401
    assert alone.json()["code"] == "user_verification_required"

    started = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))
    secret = started.json()["secret"]
    await client.post(
        "/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock())}, headers=bearer(session)
    )
    clock.advance(seconds=STEP)
    held = await passkey_login(client, authenticator.get(await login_options(client), uv=False))
    assert held.status_code == 401 and held.content.startswith(MFA_REQUIRED)
    assert held.json()["methods"] == ["totp", "recovery_code"]  # not the passkey again
    done = await client.post(
        "/login/mfa", json={"mfaToken": held.json()["mfaToken"], "code": pyotp.TOTP(secret).at(clock())}
    )
    assert done.status_code == 200
    session_body = await session_of(client, done.json()["sessionToken"])
    assert (session_body["aal"], session_body["amr"]) == (2, ["hwk", "otp"])
    options = await client.post("/login/mfa/options", json={"mfaToken": held.json()["mfaToken"]})
    assert options.status_code == 401  # the token is used


async def test_refused_assertions_get_the_seeds_401(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    session, authenticator, _ = await with_passkey(client)
    first = authenticator.get(await login_options(client))
    assert (await passkey_login(client, first)).status_code == 200
    registration_challenge = (await creation_options(client, session))["challenge"]
    cases = {
        "replayed": first,
        "another origin": authenticator.get(await login_options(client), origin="https://evil.example"),
        "another rp": authenticator.get(await login_options(client), rp_id="evil.example"),
        "a registration's challenge": authenticator.get({"challenge": registration_challenge}),
        "an unknown challenge": authenticator.get({"challenge": b64url(b"y" * 32)}),
        "an unknown credential": key().get(await login_options(client)),
        "another type": authenticator.get(await login_options(client), type="webauthn.create"),
        "junk": {"id": "x", "response": {"clientDataJSON": "!!"}},
        "another user handle": authenticator.get(await login_options(client), user_handle=b"z" * 32),
    }
    for name, credential in cases.items():
        response = await passkey_login(client, credential)
        assert (response.status_code, response.content) == (401, SEED_401), name
        assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert "passkey.login_failed" in await audit_events(app, database_url)


async def test_a_second_steps_challenge_does_not_sign_in_alone(client: httpx.AsyncClient) -> None:
    _, authenticator, _ = await with_passkey(client)
    token = await password_step(client)
    options = (await client.post("/login/mfa/options", json={"mfaToken": token})).json()["options"]
    response = await passkey_login(client, authenticator.get(options))
    assert (response.status_code, response.content) == (401, SEED_401)


async def test_a_disabled_account_cannot_sign_in_with_its_passkey(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, authenticator, _ = await with_passkey(client)
    await app.state.services.admin.disable_user(EMAIL)
    response = await passkey_login(client, authenticator.get(await login_options(client)))
    assert (response.status_code, response.content) == (401, SEED_401)


async def test_a_sign_count_gone_backwards_is_refused_audited_and_mailed(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    async with passkey_app(database_url, clock, mail_dir=mail) as (app, client):
        _, authenticator, _ = await with_passkey(client)
        for _ in range(3):
            assert (
                await passkey_login(client, authenticator.get(await login_options(client)))
            ).status_code == 200
        cloned = await passkey_login(client, authenticator.get(await login_options(client), sign_count=2))
        assert (cloned.status_code, cloned.content) == (401, SEED_401)
        events = await audit_events(app, database_url)
        await app.state.services.outbox.drain()
    assert "passkey.sign_count_regressed" in events
    assert "A sign-in with a possibly copied passkey was refused" in mails_in(mail)


async def test_login_options_are_limited_per_client(app: FastAPI, client: httpx.AsyncClient) -> None:
    throttle = app.state.services.throttle
    throttle.policy = replace(throttle.policy, client_ceremonies=3)
    for _ in range(3):
        await login_options(client)
    refused = await client.post("/login/passkey/options")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) == refused.json()["retryAfter"] > 0


async def test_failed_passkey_logins_count_against_the_client(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    throttle = app.state.services.throttle
    throttle.policy = replace(throttle.policy, client_failures=2)
    _, authenticator, _ = await with_passkey(client)
    for _ in range(2):
        await passkey_login(client, key().get(await login_options(client)))
    response = await passkey_login(client, authenticator.get(await login_options(client)))
    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")


# --- as the second step -----------------------------------------------------------------------------


async def test_a_passkey_completes_a_password_login(client: httpx.AsyncClient) -> None:
    _, authenticator, _ = await with_passkey(client)
    held = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert held.status_code == 401 and held.content.startswith(MFA_REQUIRED)
    assert held.content.endswith(b',"methods":["passkey"]}')
    token = held.json()["mfaToken"]

    response = await client.post("/login/mfa/options", json={"mfaToken": token})
    assert response.status_code == 200
    options = response.json()["options"]
    assert [c["id"] for c in options["allowCredentials"]] == [authenticator.id]
    assert options["userVerification"] == "discouraged"

    assertion = authenticator.get(options, uv=False)
    done = await client.post("/login/mfa", json={"mfaToken": token, "credential": assertion})
    assert done.status_code == 200, done.text
    assert list(done.json()) == ["success", "sessionToken", "user"]
    session = await session_of(client, done.json()["sessionToken"])
    assert (session["aal"], session["amr"]) == (2, ["pwd", "hwk"])
    again = await client.post("/login/mfa", json={"mfaToken": token, "credential": assertion})
    assert (again.status_code, again.content) == (401, MFA_TOKEN_INVALID)


async def test_a_wrong_passkey_at_the_second_step_is_mfa_invalid(client: httpx.AsyncClient) -> None:
    _, authenticator, _ = await with_passkey(client)
    token = await password_step(client)
    options = (await client.post("/login/mfa/options", json={"mfaToken": token})).json()["options"]
    for wrong in (
        key().get(options),
        authenticator.get(options, origin="https://evil.example"),
        authenticator.get(await login_options(client)),  # a login's challenge, not this sign-in's
    ):
        response = await client.post("/login/mfa", json={"mfaToken": token, "credential": wrong})
        assert (response.status_code, response.content) == (401, MFA_INVALID)
    right = await client.post(
        "/login/mfa", json={"mfaToken": token, "credential": authenticator.get(options)}
    )
    assert right.status_code == 200


async def test_second_step_options_need_a_live_sign_in_with_a_passkey(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for token in ("x" * 43, "short"):
        response = await client.post("/login/mfa/options", json={"mfaToken": token})
        assert (response.status_code, response.content) == (401, MFA_TOKEN_INVALID)
    await register(client)
    session = await login(client)
    started = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))
    secret = started.json()["secret"]
    await client.post(
        "/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock())}, headers=bearer(session)
    )
    token = await password_step(client)  # the app only: no passkey may finish it
    response = await client.post("/login/mfa/options", json={"mfaToken": token})
    assert (response.status_code, response.content) == (404, NOT_FOUND)


async def test_a_passkey_and_a_code_together_are_400(client: httpx.AsyncClient) -> None:
    _, authenticator, _ = await with_passkey(client)
    token = await password_step(client)
    options = (await client.post("/login/mfa/options", json={"mfaToken": token})).json()["options"]
    both = {"mfaToken": token, "code": "123456", "credential": authenticator.get(options)}
    response = await client.post("/login/mfa", json=both)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")


# --- DOORWARD_REQUIRE_MFA -------------------------------------------------------------------------------


async def test_under_the_policy_a_passkey_may_be_added_and_the_last_factor_stays(
    database_url: str, clock: FakeClock
) -> None:
    async with passkey_app(database_url, clock, require_mfa=True) as (_, client):
        await register(client)
        session = await login(client)
        assert (await client.get("/sessions", headers=bearer(session))).status_code == 403
        authenticator = key()
        passkey_id = (await add(client, session, authenticator))["id"]
        assert (await client.get("/sessions", headers=bearer(session))).status_code == 200  # a factor now
        session = await level_two(client, authenticator)  # the level that may change the factors now
        refused = await client.request(
            "DELETE", f"/passkeys/{passkey_id}", json={"password": PASSWORD}, headers=bearer(session)
        )
        assert (refused.status_code, refused.content) == (409, LAST_FACTOR)
        second = (await add(client, session, key()))["id"]
        removed = await client.request(
            "DELETE", f"/passkeys/{second}", json={"password": PASSWORD}, headers=bearer(session)
        )
        assert removed.status_code == 200
        signed_in = await passkey_login(client, authenticator.get(await login_options(client)))
        assert list(signed_in.json()) == ["success", "sessionToken", "user"]  # no enrolment flag


# --- CSRF with the session cookie ----------------------------------------------------------------------


@asynccontextmanager
async def cookie_browser(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    cookie = {"Cookie": f"{cookie_name(True)}={token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ORIGIN, headers=cookie
    ) as browser:
        yield browser


async def test_cookie_passkey_changes_need_our_origin_and_the_csrf_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    session, _, passkey_id = await with_passkey(client)
    csrf = csrf_token_of(app.state.services.csrf_key, session)
    async with cookie_browser(app, session) as browser:
        for method, path, body in (
            ("POST", "/passkeys/options", {"password": PASSWORD}),
            ("POST", "/passkeys", {"credential": {}}),
            ("PATCH", f"/passkeys/{passkey_id}", {"name": "x"}),
            ("DELETE", f"/passkeys/{passkey_id}", {"password": PASSWORD}),
        ):
            for headers in ({"Origin": ORIGIN}, {"Origin": "https://evil.example", CSRF_HEADER: csrf}):
                refused = await browser.request(method, path, json=body, headers=headers)
                assert (refused.status_code, refused.json()) == (403, CSRF_REFUSED), (path, headers)
        assert len((await browser.get("/passkeys")).json()["passkeys"]) == 1  # a read needs no token
        ok = {"Origin": ORIGIN, CSRF_HEADER: csrf}
        authenticator = key()
        options = (await browser.post("/passkeys/options", json={"password": PASSWORD}, headers=ok)).json()[
            "options"
        ]
        added = await browser.post(
            "/passkeys", json={"credential": authenticator.create(options)}, headers=ok
        )
        assert added.status_code == 201
        renamed = await browser.patch(f"/passkeys/{passkey_id}", json={"name": "Desk"}, headers=ok)
        assert renamed.status_code == 200


async def test_the_passkey_sign_in_reads_no_session_and_sets_no_cookie(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    session, authenticator, _ = await with_passkey(client)
    async with cookie_browser(app, session) as browser:
        options = (await browser.post("/login/passkey/options")).json()["options"]
        response = await browser.post("/login/passkey", json={"credential": authenticator.get(options)})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


# --- malformed bodies: 400 invalid_request, never 500 ---------------------------------------------------


CREDENTIAL_CASES: list[tuple[str, bytes, str]] = [
    ("bad json", b'{"credential": {', "application/json"),
    ("empty", b"", "application/json"),
    ("array", b"[]", "application/json"),
    ("no credential", b"{}", "application/json"),
    ("null credential", b'{"credential": null}', "application/json"),
    ("string credential", b'{"credential": "x"}', "application/json"),
    ("list credential", b'{"credential": []}', "application/json"),
    ("deep nesting", b'{"credential": ' + b'{"a":' * 3000 + b"1" + b"}" * 3001, "application/json"),
    ("lone surrogate name", b'{"credential": {}, "name": "\\ud800"}', "application/json"),
    ("text/plain", b'{"credential": {}}', "text/plain"),
    ("form", b"credential=x", "application/x-www-form-urlencoded"),
]


async def test_malformed_bodies_are_400(client: httpx.AsyncClient) -> None:
    session, _, passkey_id = await with_passkey(client)
    token = await password_step(client)
    auth = bearer(session)
    cases: list[tuple[str, str, dict[str, str], list[tuple[str, bytes, str]]]] = [
        ("POST", "/passkeys/options", auth, malformed({"password": PASSWORD})),
        ("DELETE", f"/passkeys/{passkey_id}", auth, malformed({"password": PASSWORD})),
        (
            "PATCH",
            f"/passkeys/{passkey_id}",
            auth,
            [c for c in malformed({"name": "x"}) if c[0] != "empty string"],
        ),
        ("POST", "/login/mfa/options", {}, malformed({"mfaToken": token})),
        ("POST", "/passkeys", auth, CREDENTIAL_CASES),
        ("POST", "/login/passkey", {}, CREDENTIAL_CASES),
        (
            "POST",
            "/login/mfa",
            {},
            [
                (n, b.replace(b'{"credential"', b'{"mfaToken": "%s", "credential"' % token.encode()), t)
                for n, b, t in CREDENTIAL_CASES
                if n not in {"no credential", "null credential"}
            ],
        ),
    ]
    for method, path, headers, bodies in cases:
        for name, body, content_type in bodies:
            response = await client.request(
                method, path, content=body, headers={**headers, "Content-Type": content_type}
            )
            assert (response.status_code, response.json()) == (400, INVALID_REQUEST), (path, name)
    assert len(await listed(client, session)) == 1


# --- /openapi.json ------------------------------------------------------------------------------------


async def test_openapi_documents_the_passkey_endpoints(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    documented = {
        ("post", "/passkeys/options"): {"200", "400", "401", "403", "409", "413", "429", "503"},
        ("post", "/passkeys"): {"201", "400", "401", "403", "409", "413", "503"},
        ("get", "/passkeys"): {"200", "401", "503"},
        ("patch", "/passkeys/{passkey_id}"): {"200", "400", "401", "403", "404", "413", "503"},
        ("delete", "/passkeys/{passkey_id}"): {
            "200",
            "400",
            "401",
            "403",
            "404",
            "409",
            "413",
            "429",
            "503",
        },
        ("post", "/login/passkey/options"): {"200", "429", "503"},
        ("post", "/login/passkey"): {"200", "400", "401", "403", "413", "429", "503"},
        ("post", "/login/mfa/options"): {"200", "400", "401", "404", "413", "429", "503"},
    }
    for (method, path), statuses in documented.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses, path
        if (method, path) not in {("get", "/passkeys"), ("post", "/login/passkey/options")}:
            assert operation["requestBody"]["required"] is True, path
    login_mfa = paths["/login/mfa"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "credential" in login_mfa["properties"]
    assert (
        "passkey" in spec["components"]["schemas"]["MfaRequiredOut"]["properties"]["methods"]["items"]["enum"]
    )
