"""Multi-factor login through the JSON API (issue 19), on both databases: every row of the contract,
codes computed with pyotp from the secret the API hands out, the app's FakeClock for drift, replay and
expiry; the throttle, the MFA policy's 403 and its open paths, aal/amr on sessions, CSRF on cookie
set-up, and malformed bodies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from doorward.core.tokens import token_digest
from doorward.web.cookies import cookie_name
from doorward.web.routes import authenticated, signed_in
from doorward.web.security import CSRF_HEADER, csrf_token_of
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.db import fetch

STEP = 30
MFA_REQUIRED = b'{"success":false,"error":"Second factor required","code":"mfa_required","mfaToken":"'
MFA_INVALID = b'{"success":false,"error":"Invalid code","code":"mfa_invalid"}'
MFA_TOKEN_INVALID = b'{"success":false,"error":"Sign-in expired, start again","code":"mfa_token_invalid"}'
ENROLMENT_REQUIRED = (
    b'{"success":false,"error":"Set up two-step verification first","code":"mfa_enrollment_required"}'
)
SEED_401 = b'{"success":false,"error":"Invalid credentials"}'
CSRF_REFUSED = {"success": False, "error": "Cross-site request refused", "code": "csrf"}
RECOVERY_CODE = re.compile(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}")  # Crockford base32, lower
NEW_PASSWORD = "a brand new passphrase for ada"


@dataclass(frozen=True)
class Enrolled:
    """An account with TOTP on: the password session that set it up, the secret, the codes."""

    session: str
    secret: str
    codes: list[str]

    def code(self, clock: FakeClock, steps: int = 0) -> str:
        """The app's code ``steps`` 30-second steps from the clock's now."""
        return pyotp.TOTP(self.secret).at(clock() + timedelta(seconds=STEP * steps))

    def wrong_code(self, clock: FakeClock) -> str:
        """Six digits the app would not show within a step of now."""
        near = {self.code(clock, steps) for steps in (-1, 0, 1)}
        return next(c for c in ("000000", "000001", "000002", "000003") if c not in near)


async def enrol(client: httpx.AsyncClient, clock: FakeClock, email: str = EMAIL) -> Enrolled:
    """Register, log in, set up and confirm TOTP through the API; then the confirming step is past."""
    await register(client, email)
    session = await login(client, email)
    secret, codes = await turn_app_on(client, clock, session)
    return Enrolled(session, secret, codes)


async def turn_app_on(client: httpx.AsyncClient, clock: FakeClock, session: str) -> tuple[str, list[str]]:
    """Set up and confirm the app from ``session``: its secret and recovery codes."""
    started = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    confirmed = await client.post(
        "/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock())}, headers=bearer(session)
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(seconds=STEP)
    return secret, list(confirmed.json()["recoveryCodes"])


async def at_level_two(client: httpx.AsyncClient, enrolled: Enrolled, clock: FakeClock) -> str:
    """A session signed in with the password and the app's code (aal 2): the one that may change the
    account's factors now that it has one. The code's step is then past."""
    response = await second_step(client, await password_step(client), code=enrolled.code(clock))
    assert response.status_code == 200, response.text
    clock.advance(seconds=STEP)
    return str(response.json()["sessionToken"])


async def password_step(client: httpx.AsyncClient, email: str = EMAIL) -> str:
    """POST /login with the right password of an MFA account: the mfaToken of its 401."""
    response = await client.post("/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 401 and response.content.startswith(MFA_REQUIRED), response.text
    return str(response.json()["mfaToken"])


async def second_step(client: httpx.AsyncClient, token: str, **factor: str) -> httpx.Response:
    return await client.post("/login/mfa", json={"mfaToken": token, **factor})


async def mfa_status(client: httpx.AsyncClient, session: str) -> bytes:
    response = await client.get("/mfa", headers=bearer(session))
    assert response.status_code == 200, response.text
    return response.content


def same_headers(a: httpx.Response, b: httpx.Response) -> bool:
    def shown(r: httpx.Response) -> dict[str, str]:
        return {k: v for k, v in r.headers.items() if k != "date"}

    return shown(a) == shown(b)


# --- set-up: POST /mfa/totp, POST /mfa/totp/confirm, GET /mfa --------------------------------------


async def test_set_up_hands_out_a_pending_secret_that_calling_again_replaces(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    session = await login(client)
    assert await mfa_status(client, session) == b'{"success":true,"totp":false,"recoveryCodesLeft":0}'

    first = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))

    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert list(body) == ["success", "secret", "otpauthUri"]
    assert body["success"] is True
    secret = body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # base32, 160 bits
    assert body["otpauthUri"] == (
        f"otpauth://totp/doorward:ada@example.com?secret={secret}"
        "&issuer=doorward&algorithm=SHA1&digits=6&period=30"
    )
    # Pending: nothing is on yet, and the password alone still logs in.
    assert await mfa_status(client, session) == b'{"success":true,"totp":false,"recoveryCodesLeft":0}'
    await login(client)

    second = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))
    assert second.status_code == 200
    replaced = second.json()["secret"]
    assert replaced != secret
    stale = await client.post(
        "/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock())}, headers=bearer(session)
    )
    assert (stale.status_code, stale.json()["code"]) == (400, "code_invalid")
    fresh = await client.post(
        "/mfa/totp/confirm", json={"code": pyotp.TOTP(replaced).at(clock())}, headers=bearer(session)
    )
    assert fresh.status_code == 200


async def test_confirm_turns_totp_on_and_shows_ten_codes_this_once(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    session = await login(client)
    secret = (await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))).json()[
        "secret"
    ]

    confirmed = await client.post(
        "/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock())}, headers=bearer(session)
    )

    assert confirmed.status_code == 200
    assert confirmed.headers["cache-control"] == "no-store"
    body = confirmed.json()
    assert list(body) == ["success", "recoveryCodes"]
    codes = body["recoveryCodes"]
    assert len(codes) == len(set(codes)) == 10
    assert all(RECOVERY_CODE.fullmatch(code) for code in codes), codes
    assert await mfa_status(client, session) == b'{"success":true,"totp":true,"recoveryCodesLeft":10}'
    await password_step(client)  # the password alone no longer opens a session

    # Shown once: nothing gives them again, and set-up is closed while TOTP is on.
    again = await client.post("/mfa/totp/confirm", json={"code": "123456"}, headers=bearer(session))
    assert (again.status_code, again.json()["code"]) == (409, "totp_active")
    restart = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))
    assert restart.status_code == 409
    assert restart.json() == {
        "success": False,
        "error": "Two-step verification is already on",
        "code": "totp_active",
    }


async def test_confirm_needs_a_started_set_up_and_the_right_code(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    session = await login(client)
    early = await client.post("/mfa/totp/confirm", json={"code": "123456"}, headers=bearer(session))
    assert early.status_code == 409
    assert early.json() == {"success": False, "error": "Start the set-up first", "code": "totp_not_pending"}

    secret = (await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(session))).json()[
        "secret"
    ]
    enrolled = Enrolled(session, secret, [])
    wrong = await client.post(
        "/mfa/totp/confirm", json={"code": enrolled.wrong_code(clock)}, headers=bearer(session)
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"success": False, "error": "Invalid code", "code": "code_invalid"}
    assert await mfa_status(client, session) == b'{"success":true,"totp":false,"recoveryCodesLeft":0}'


@pytest.mark.parametrize(
    ("path", "extra"),
    [("/mfa/totp", {}), ("/mfa/recovery-codes", {}), ("/mfa/totp/disable", {"code": "000000"})],
)
async def test_every_change_of_a_factor_takes_the_current_password(
    client: httpx.AsyncClient, clock: FakeClock, path: str, extra: dict[str, str]
) -> None:
    enrolled = await enrol(client, clock)
    session = await at_level_two(client, enrolled, clock)
    if path == "/mfa/totp":  # set-up is for an account without TOTP: turn it off first
        off = await client.post(
            "/mfa/totp/disable",
            json={"password": PASSWORD, "code": enrolled.code(clock)},
            headers=bearer(session),
        )
        assert off.status_code == 200
    response = await client.post(
        path, json={"password": "not the password", **extra}, headers=bearer(session)
    )
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "The current password is not correct",
        "code": "invalid_current_password",
    }


async def test_set_up_needs_a_session(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/mfa"),
        ("POST", "/mfa/totp"),
        ("POST", "/mfa/totp/confirm"),
        ("POST", "/mfa/totp/disable"),
        ("POST", "/mfa/recovery-codes"),
    ]:
        response = await client.request(method, path, content=b"{not json", headers=bearer("A" * 43))
        assert response.status_code == 401, path  # the session first, whatever the body
        assert response.json()["code"] == "invalid_session"
        assert response.headers["www-authenticate"] == "Bearer"


# --- a login in two steps: POST /login, then POST /login/mfa -----------------------------------------


async def test_the_right_password_of_an_mfa_account_gets_the_contracts_401_and_no_session(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await enrol(client, clock)
    url = app.state.services.settings.database_url
    ((before,),) = await fetch(url, "SELECT count(*) FROM sessions")

    response = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})

    assert response.status_code == 401
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert list(body) == ["success", "error", "code", "mfaToken", "methods"]
    assert response.content.startswith(MFA_REQUIRED)
    assert response.content.endswith(b'","methods":["totp","recovery_code"]}')
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body["mfaToken"])
    assert "sessionToken" not in body
    assert await fetch(url, "SELECT count(*) FROM sessions") == [(before,)]
    assert await fetch(url, "SELECT digest FROM mfa_challenges") == [(token_digest(body["mfaToken"]),)]


async def test_a_code_from_the_app_completes_the_login_with_the_seeds_body(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    token = await password_step(client)

    response = await second_step(client, token, code=enrolled.code(clock))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert list(body) == ["success", "sessionToken", "user"]
    session_token = body["sessionToken"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session_token)
    assert response.content == (
        b'{"success":true,"sessionToken":"'
        + session_token.encode()
        + b'","user":{"id":1,"email":"ada@example.com"}}'
    )
    checked = (await client.get("/session", headers=bearer(session_token))).json()["session"]
    assert (checked["aal"], checked["amr"]) == (2, ["pwd", "otp"])


async def test_a_code_may_be_typed_with_spaces(client: httpx.AsyncClient, clock: FakeClock) -> None:
    enrolled = await enrol(client, clock)
    code = enrolled.code(clock)
    response = await second_step(client, await password_step(client), code=f" {code[:3]} {code[3:]} ")
    assert response.status_code == 200


async def test_codes_of_the_step_before_and_after_are_accepted_and_two_steps_away_are_not(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)  # the confirming code used step s; the clock is at s + 1
    clock.advance(seconds=2 * STEP)  # now s + 3: s + 1 and s + 2 are unused and before now
    token = await password_step(client)
    for steps in (-2, 2):
        refused = await second_step(client, token, code=enrolled.code(clock, steps))
        assert (refused.status_code, refused.content) == (401, MFA_INVALID), steps

    before = await second_step(client, token, code=enrolled.code(clock, -1))
    assert before.status_code == 200, before.text
    after = await second_step(client, await password_step(client), code=enrolled.code(clock, +1))
    assert after.status_code == 200, after.text


async def test_a_code_is_accepted_once(client: httpx.AsyncClient, clock: FakeClock) -> None:
    enrolled = await enrol(client, clock)
    code = enrolled.code(clock)
    assert (await second_step(client, await password_step(client), code=code)).status_code == 200

    replayed = await second_step(client, await password_step(client), code=code)
    assert (replayed.status_code, replayed.content) == (401, MFA_INVALID)
    # Nor one of an earlier step, though within the drift window.
    earlier = await second_step(client, await password_step(client), code=enrolled.code(clock, -1))
    assert (earlier.status_code, earlier.content) == (401, MFA_INVALID)
    clock.advance(seconds=STEP)
    assert (
        await second_step(client, await password_step(client), code=enrolled.code(clock))
    ).status_code == 200


async def test_the_code_that_confirmed_set_up_does_not_log_in(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    clock.advance(seconds=-STEP)  # back in the confirming step
    replayed = await second_step(client, await password_step(client), code=enrolled.code(clock))
    assert (replayed.status_code, replayed.content) == (401, MFA_INVALID)


async def test_an_mfa_token_lives_five_minutes(client: httpx.AsyncClient, clock: FakeClock) -> None:
    enrolled = await enrol(client, clock)
    in_time = await password_step(client)
    too_late = await password_step(client)
    clock.advance(minutes=5, seconds=-1)
    assert (await second_step(client, in_time, code=enrolled.code(clock))).status_code == 200
    clock.advance(seconds=1 + STEP)  # five minutes to the second, and a fresh step for the code
    expired = await second_step(client, too_late, code=enrolled.code(clock))
    assert (expired.status_code, expired.content) == (401, MFA_TOKEN_INVALID)
    assert expired.headers["cache-control"] == "no-store"


async def test_an_mfa_token_is_single_use(client: httpx.AsyncClient, clock: FakeClock) -> None:
    enrolled = await enrol(client, clock)
    token = await password_step(client)
    assert (await second_step(client, token, code=enrolled.code(clock))).status_code == 200
    clock.advance(seconds=STEP)
    again = await second_step(client, token, code=enrolled.code(clock))
    assert (again.status_code, again.content) == (401, MFA_TOKEN_INVALID)
    by_recovery = await second_step(client, token, recoveryCode=enrolled.codes[0])
    assert (by_recovery.status_code, by_recovery.content) == (401, MFA_TOKEN_INVALID)


async def test_an_mfa_token_is_spent_by_five_wrong_codes(client: httpx.AsyncClient, clock: FakeClock) -> None:
    enrolled = await enrol(client, clock)
    token = await password_step(client)
    for _ in range(5):
        wrong = await second_step(client, token, code=enrolled.wrong_code(clock))
        assert (wrong.status_code, wrong.content) == (401, MFA_INVALID)
    clock.advance(minutes=1)  # past the throttle's wait: the token itself is what refuses
    spent = await second_step(client, token, code=enrolled.code(clock))
    assert (spent.status_code, spent.content) == (401, MFA_TOKEN_INVALID)
    # The account is not locked by it: a new password step and the right code.
    assert (
        await second_step(client, await password_step(client), code=enrolled.code(clock))
    ).status_code == 200


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 200, "not a token at all, with spaces"])
async def test_an_unknown_or_malformed_mfa_token_is_invalid(
    client: httpx.AsyncClient, clock: FakeClock, token: str
) -> None:
    enrolled = await enrol(client, clock)
    response = await second_step(client, token, code=enrolled.code(clock))
    if token == "":  # an empty string is no token at all: a malformed body
        assert (response.status_code, response.json()["code"]) == (400, "invalid_request")
        return
    assert (response.status_code, response.content) == (401, MFA_TOKEN_INVALID)


async def test_a_disabled_account_loses_its_pending_login(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    token = await password_step(client)
    await app.state.services.admin.disable_user(EMAIL)
    response = await second_step(client, token, code=enrolled.code(clock))
    assert (response.status_code, response.content) == (401, MFA_TOKEN_INVALID)


async def test_wrong_codes_count_in_the_accounts_throttle_with_logins_429(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    first, second = await password_step(client), await password_step(client)
    for _ in range(5):  # four failures are free; the fifth makes the account wait
        wrong = await second_step(client, first, code=enrolled.wrong_code(clock))
        assert (wrong.status_code, wrong.content) == (401, MFA_INVALID)

    throttled = await second_step(client, second, code=enrolled.code(clock))
    by_password = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})

    for answer in (throttled, by_password):
        assert answer.status_code == 429
        assert (
            answer.content
            == b'{"success":false,"error":"Too many attempts","code":"rate_limited","retryAfter":1}'
        )
        assert answer.headers["retry-after"] == "1"
    assert same_headers(throttled, by_password)
    clock.advance(seconds=1)  # the wait is over, and the 429 did not spend the token
    assert (await second_step(client, second, code=enrolled.code(clock))).status_code == 200


# --- recovery codes --------------------------------------------------------------------------------


async def test_a_recovery_code_logs_in_once_and_the_count_drops(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    first, second = enrolled.codes[0], enrolled.codes[1]

    response = await second_step(client, await password_step(client), recoveryCode=first)

    assert response.status_code == 200
    assert list(response.json()) == ["success", "sessionToken", "user"]
    session = (await client.get("/session", headers=bearer(response.json()["sessionToken"]))).json()
    assert (session["session"]["aal"], session["session"]["amr"]) == (2, ["pwd", "otp"])
    assert await mfa_status(client, enrolled.session) == b'{"success":true,"totp":true,"recoveryCodesLeft":9}'

    again = await second_step(client, await password_step(client), recoveryCode=first)
    assert (again.status_code, again.content) == (401, MFA_INVALID)
    # Typed loosely: upper case, a space for the hyphen.
    loose = await second_step(
        client, await password_step(client), recoveryCode=second.upper().replace("-", " ")
    )
    assert loose.status_code == 200
    assert await mfa_status(client, enrolled.session) == b'{"success":true,"totp":true,"recoveryCodesLeft":8}'


async def test_regenerating_voids_the_old_set(client: httpx.AsyncClient, clock: FakeClock) -> None:
    enrolled = await enrol(client, clock)
    response = await client.post(
        "/mfa/recovery-codes",
        json={"password": PASSWORD},
        headers=bearer(await at_level_two(client, enrolled, clock)),
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["success", "recoveryCodes"]
    fresh = body["recoveryCodes"]
    assert len(fresh) == 10 and all(RECOVERY_CODE.fullmatch(code) for code in fresh)
    assert not set(fresh) & set(enrolled.codes)

    old = await second_step(client, await password_step(client), recoveryCode=enrolled.codes[2])
    assert (old.status_code, old.content) == (401, MFA_INVALID)
    assert (await second_step(client, await password_step(client), recoveryCode=fresh[2])).status_code == 200
    assert await mfa_status(client, enrolled.session) == b'{"success":true,"totp":true,"recoveryCodesLeft":9}'


# --- turning it off --------------------------------------------------------------------------------


@pytest.mark.parametrize("proof", ["totp", "recovery_code"])
async def test_disable_with_the_password_and_a_code(
    client: httpx.AsyncClient, clock: FakeClock, proof: str
) -> None:
    enrolled = await enrol(client, clock)
    session = await at_level_two(client, enrolled, clock)
    code = enrolled.code(clock) if proof == "totp" else enrolled.codes[0]

    response = await client.post(
        "/mfa/totp/disable", json={"password": PASSWORD, "code": code}, headers=bearer(session)
    )

    assert (response.status_code, response.content) == (200, b'{"success":true}')
    assert (
        await mfa_status(client, enrolled.session) == b'{"success":true,"totp":false,"recoveryCodesLeft":0}'
    )
    token = await login(client)  # the password alone, again
    session = (await client.get("/session", headers=bearer(token))).json()["session"]
    assert (session["aal"], session["amr"]) == (1, ["pwd"])
    for path, body in [
        ("/mfa/totp/disable", {"password": PASSWORD, "code": enrolled.codes[1]}),
        ("/mfa/recovery-codes", {"password": PASSWORD}),
    ]:
        off = await client.post(path, json=body, headers=bearer(token))
        assert off.status_code == 409
        assert off.json() == {
            "success": False,
            "error": "Two-step verification is not on",
            "code": "mfa_not_enabled",
        }


async def test_disable_refuses_a_wrong_code_and_keeps_totp(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    session = await at_level_two(client, enrolled, clock)
    for code in (enrolled.wrong_code(clock), "aaaaa-aaaaa", enrolled.code(clock, -1)):  # the last: used
        response = await client.post(
            "/mfa/totp/disable", json={"password": PASSWORD, "code": code}, headers=bearer(session)
        )
        assert response.status_code == 400, code
        assert response.json() == {"success": False, "error": "Invalid code", "code": "code_invalid"}
    assert (
        await mfa_status(client, enrolled.session) == b'{"success":true,"totp":true,"recoveryCodesLeft":10}'
    )


# --- what the account learns, and what no login path skips ----------------------------------------


def mails_in(folder: Path) -> dict[str, str]:
    """The plain text of each .eml the file mailer wrote, by subject (each subject once)."""
    found = {}
    for path in folder.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert str(message["Subject"]) not in found, message["Subject"]
        found[str(message["Subject"])] = str(text)
    return found


async def test_each_change_of_a_factor_and_each_recovery_code_used_is_mailed(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    async with app_for(database_url, clock, mail_dir=mail) as (app, client):
        enrolled = await enrol(client, clock)
        used = await second_step(client, await password_step(client), recoveryCode=enrolled.codes[0])
        session = used.json()["sessionToken"]  # a recovery code signs in at level 2 too
        await client.post("/mfa/recovery-codes", json={"password": PASSWORD}, headers=bearer(session))
        await client.post(
            "/mfa/totp/disable",
            json={"password": PASSWORD, "code": enrolled.code(clock)},
            headers=bearer(session),
        )
        await app.state.services.outbox.drain()
    mails = mails_in(mail)
    assert set(mails) == {
        "Two-step verification is on",
        "A recovery code was used to log in",
        "New recovery codes were made",
        "Two-step verification was turned off",
    }
    assert "9 codes left" in mails["A recovery code was used to log in"]


async def test_a_password_reset_keeps_the_second_factor(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    async with app_for(database_url, clock, mail_dir=mail) as (app, client):
        enrolled = await enrol(client, clock)
        asked = await client.post("/password/reset/request", json={"email": EMAIL})
        assert asked.status_code == 202
        await app.state.services.accounts.background.drain()
        await app.state.services.outbox.drain()
        reset_token = re.search(r"token=([A-Za-z0-9_-]{43})", mails_in(mail)["Reset your password"])
        assert reset_token
        done = await client.post(
            "/password/reset/confirm", json={"token": reset_token.group(1), "newPassword": NEW_PASSWORD}
        )
        assert (done.status_code, done.json()) == (200, {"success": True})

        response = await client.post("/login", json={"email": EMAIL, "password": NEW_PASSWORD})
        assert response.status_code == 401 and response.content.startswith(MFA_REQUIRED)
        finished = await second_step(client, response.json()["mfaToken"], code=enrolled.code(clock))
        assert finished.status_code == 200


# --- enumeration: the password step says nothing more than the seed's 401 -----------------------------


async def test_a_wrong_password_of_an_mfa_account_answers_as_an_unknown_email(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await enrol(client, clock)
    await enrol(client, clock, "disabled@example.com")
    await app.state.services.admin.disable_user("disabled@example.com")

    answers = [
        await client.post("/login", json={"email": "nobody@example.com", "password": PASSWORD}),
        await client.post("/login", json={"email": EMAIL, "password": "not the password at all"}),
        await client.post("/login", json={"email": "disabled@example.com", "password": PASSWORD}),
    ]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert {a.content for a in answers} == {SEED_401}
    assert all(same_headers(answers[0], other) for other in answers[1:])


# --- assurance on sessions: GET /session and GET /sessions ------------------------------------------


async def test_sessions_show_their_assurance_level_and_methods_after_the_other_keys(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)  # its set-up session is a password session
    strong = (await second_step(client, await password_step(client), code=enrolled.code(clock))).json()

    weak_check = (await client.get("/session", headers=bearer(enrolled.session))).json()
    strong_check = (await client.get("/session", headers=bearer(strong["sessionToken"]))).json()

    assert list(weak_check) == ["success", "user", "session"]  # no policy: no mfaEnrollmentRequired
    assert list(weak_check["session"]) == ["id", "createdAt", "lastSeenAt", "expiresAt", "aal", "amr"]
    assert (weak_check["session"]["aal"], weak_check["session"]["amr"]) == (1, ["pwd"])
    assert (strong_check["session"]["aal"], strong_check["session"]["amr"]) == (2, ["pwd", "otp"])

    listed = (await client.get("/sessions", headers=bearer(strong["sessionToken"]))).json()["sessions"]
    keys = [
        "id",
        "createdAt",
        "lastSeenAt",
        "expiresAt",
        "clientAddress",
        "userAgent",
        "current",
        "aal",
        "amr",
    ]
    assert all(list(item) == keys for item in listed)
    shown = {item["id"]: (item["aal"], item["amr"], item["current"]) for item in listed}
    assert shown == {
        weak_check["session"]["id"]: (1, ["pwd"], False),
        strong_check["session"]["id"]: (2, ["pwd", "otp"], True),
    }


# --- DOORWARD_REQUIRE_MFA ----------------------------------------------------------------------------


OPEN_UNDER_POLICY = {
    ("GET", "/mfa"),
    ("POST", "/mfa/totp"),
    ("POST", "/mfa/totp/confirm"),
    ("POST", "/mfa/totp/disable"),
    ("POST", "/mfa/recovery-codes"),
    ("POST", "/logout/all"),
    ("POST", "/passkeys/options"),
    ("POST", "/passkeys"),
    ("GET", "/passkeys"),
    ("PATCH", "/passkeys/{passkey_id}"),
    ("DELETE", "/passkeys/{passkey_id}"),
}
"""Endpoints that take a session and stay open to one the policy confines (besides GET /session, on
the fast path, and POST /logout, which needs no session)."""

CLOSED_UNDER_POLICY = {
    ("GET", "/sessions"),
    ("DELETE", "/sessions/{session_id}"),
    ("POST", "/password/change"),
    ("POST", "/email/change"),
    ("POST", "/account/delete"),
}


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute of ``routes``, also inside included routers (which FastAPI 0.165 keeps whole)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def session_dependencies(app: FastAPI) -> dict[tuple[str, str], set[Callable[..., Any]]]:
    """For each API route, which of ``authenticated`` and ``signed_in`` its dependencies call."""
    wanted = {authenticated, signed_in}
    found: dict[tuple[str, str], set[Callable[..., Any]]] = {}
    for route in api_routes(app.routes):
        pending, calls = list(route.dependant.dependencies), set()
        while pending:
            dependency = pending.pop()
            if dependency.call in wanted:
                calls.add(dependency.call)
            pending.extend(dependency.dependencies)
        for method in route.methods:
            found[(method, route.path)] = calls
    assert ("POST", "/login") in found  # the walk reached the routers
    return found


async def test_every_endpoint_that_takes_a_session_is_closed_by_the_policy_unless_listed(
    app: FastAPI,
) -> None:
    """The one place is the ``authenticated`` dependency: a new endpoint using ``signed_in`` instead
    must be added here on purpose."""
    found = session_dependencies(app)
    # ``authenticated`` itself depends on ``signed_in`` (for the session's security schemes in
    # /openapi.json): open are the routes that reach ``signed_in`` alone.
    assert {key for key, calls in found.items() if calls == {signed_in}} == OPEN_UNDER_POLICY
    assert {key for key, calls in found.items() if authenticated in calls} == CLOSED_UNDER_POLICY


@asynccontextmanager
async def policy_app(database_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with app_for(database_url, clock, require_mfa=True) as (_, client):
        yield client


async def test_under_the_policy_an_account_without_a_factor_may_only_enrol(
    database_url: str, clock: FakeClock
) -> None:
    async with policy_app(database_url, clock) as client:
        await register(client)
        response = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["success", "sessionToken", "user", "mfaEnrollmentRequired"]
        assert response.content.endswith(b',"mfaEnrollmentRequired":true}')
        token = body["sessionToken"]
        other = await login(client)

        check = await client.get("/session", headers=bearer(token))
        assert check.status_code == 200
        assert list(check.json()) == ["success", "user", "session", "mfaEnrollmentRequired"]
        assert check.content.endswith(b',"mfaEnrollmentRequired":true}')
        assert (check.json()["session"]["aal"], check.json()["session"]["amr"]) == (1, ["pwd"])
        session_id = check.json()["session"]["id"]

        closed = [
            await client.get("/sessions", headers=bearer(token)),
            await client.delete(f"/sessions/{session_id}", headers=bearer(other)),
            await client.post(
                "/password/change",
                json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
                headers=bearer(token),
            ),
        ]
        for refused in closed:
            assert (refused.status_code, refused.content) == (403, ENROLMENT_REQUIRED), refused.request.url
            assert refused.headers["cache-control"] == "no-store"
        assert (await client.get("/session", headers=bearer(token))).status_code == 200  # nothing ended
        await login(client, password=PASSWORD)  # nor was the password changed

        # Enrolment is open, and once it is done every endpoint is.
        assert await mfa_status(client, token) == b'{"success":true,"totp":false,"recoveryCodesLeft":0}'
        started = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=bearer(token))
        assert started.status_code == 200
        secret = started.json()["secret"]
        confirmed = await client.post(
            "/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock())}, headers=bearer(token)
        )
        assert confirmed.status_code == 200
        assert (await client.get("/sessions", headers=bearer(token))).status_code == 200
        after = await client.get("/session", headers=bearer(token))
        assert list(after.json()) == ["success", "user", "session"]
        clock.advance(seconds=STEP)
        mfa_token = await password_step(client)
        finished = await second_step(client, mfa_token, code=pyotp.TOTP(secret).at(clock()))
        assert list(finished.json()) == ["success", "sessionToken", "user"]


async def test_under_the_policy_logout_stays_open(database_url: str, clock: FakeClock) -> None:
    async with policy_app(database_url, clock) as client:
        await register(client)
        first, second, third = await login(client), await login(client), await login(client)
        ended = await client.post("/logout/all", headers=bearer(first))
        assert (ended.status_code, ended.json()) == (200, {"success": True, "ended": 3})
        assert (await client.get("/session", headers=bearer(second))).status_code == 401
        fourth = await login(client)
        assert (await client.post("/logout", headers=bearer(fourth))).json() == {"success": True}
        assert (await client.get("/session", headers=bearer(fourth))).status_code == 401
        assert third


async def test_the_policy_leaves_accounts_with_a_factor_alone(database_url: str, clock: FakeClock) -> None:
    async with policy_app(database_url, clock) as client:
        enrolled = await enrol(client, clock)
        response = await second_step(client, await password_step(client), code=enrolled.code(clock))
        assert list(response.json()) == ["success", "sessionToken", "user"]
        token = response.json()["sessionToken"]
        assert list((await client.get("/session", headers=bearer(token))).json()) == [
            "success",
            "user",
            "session",
        ]
        assert (await client.get("/sessions", headers=bearer(token))).status_code == 200


# --- CSRF: cookie-authenticated set-up --------------------------------------------------------------


ORIGIN = "https://testserver"
SET_UP_POSTS = ["/mfa/totp", "/mfa/totp/confirm", "/mfa/totp/disable", "/mfa/recovery-codes"]


@asynccontextmanager
async def cookie_browser(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the session as the browser's cookie (https, as the __Host- cookie needs)."""
    cookie = {"Cookie": f"{cookie_name(True)}={token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ORIGIN, headers=cookie
    ) as browser:
        yield browser


@pytest.mark.parametrize("path", SET_UP_POSTS)
async def test_cookie_set_up_posts_need_our_origin_and_the_csrf_token(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, path: str
) -> None:
    enrolled = await enrol(client, clock)
    body = {"password": PASSWORD, "code": enrolled.code(clock)}
    csrf = csrf_token_of(app.state.services.csrf_key, enrolled.session)
    async with cookie_browser(app, enrolled.session) as browser:
        for headers in (
            {"Origin": ORIGIN},  # no token
            {"Origin": ORIGIN, CSRF_HEADER: "x" * 43},  # a wrong one
            {"Origin": "https://evil.example", CSRF_HEADER: csrf},  # another site
        ):
            refused = await browser.post(path, json=body, headers=headers)
            assert (refused.status_code, refused.json()) == (403, CSRF_REFUSED), headers
    assert (
        await mfa_status(client, enrolled.session) == b'{"success":true,"totp":true,"recoveryCodesLeft":10}'
    )


async def test_with_the_cookie_and_its_csrf_token_set_up_works_end_to_end(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    token = await login(client)
    csrf = {"Origin": ORIGIN, CSRF_HEADER: csrf_token_of(app.state.services.csrf_key, token)}
    async with cookie_browser(app, token) as browser:
        assert (await browser.get("/mfa")).status_code == 200  # a read needs no token
        started = await browser.post("/mfa/totp", json={"password": PASSWORD}, headers=csrf)
        assert started.status_code == 200
        totp = pyotp.TOTP(started.json()["secret"])
        confirmed = await browser.post("/mfa/totp/confirm", json={"code": totp.at(clock())}, headers=csrf)
        assert confirmed.status_code == 200
        renewed = await browser.post("/mfa/recovery-codes", json={"password": PASSWORD}, headers=csrf)
        assert (renewed.status_code, renewed.json()["code"]) == (403, "aal2_required")  # a level-1 session
    clock.advance(seconds=STEP)
    signed_in = await second_step(client, await password_step(client), code=totp.at(clock()))
    strong = signed_in.json()["sessionToken"]
    csrf = {"Origin": ORIGIN, CSRF_HEADER: csrf_token_of(app.state.services.csrf_key, strong)}
    async with cookie_browser(app, strong) as browser:
        renewed = await browser.post("/mfa/recovery-codes", json={"password": PASSWORD}, headers=csrf)
        assert renewed.status_code == 200
        clock.advance(seconds=STEP)
        off = await browser.post(
            "/mfa/totp/disable", json={"password": PASSWORD, "code": totp.at(clock())}, headers=csrf
        )
        assert (off.status_code, off.json()) == (200, {"success": True})


async def test_the_second_step_reads_no_session_so_a_cookie_riding_along_needs_no_csrf_token(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    token = await password_step(client)
    async with cookie_browser(app, enrolled.session) as browser:
        response = await browser.post("/login/mfa", json={"mfaToken": token, "code": enrolled.code(clock)})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers  # the API answers with a token, never a cookie


# --- malformed bodies: 400 invalid_request, never 500 ---------------------------------------------------


def malformed(fields: dict[str, str]) -> list[tuple[str, bytes, str]]:
    """Bodies a schema with ``fields`` (their valid values) must refuse, whatever the endpoint."""
    json_type = "application/json"

    def with_value(raw: bytes) -> bytes:
        name = next(iter(fields))
        rest = b"".join(b', "%s": "%s"' % (k.encode(), v.encode()) for k, v in list(fields.items())[1:])
        return b'{"%s": %s%s}' % (name.encode(), raw, rest)

    valid = with_value(b'"%s"' % next(iter(fields.values())).encode())
    return [
        ("bad json", valid[:-3], json_type),
        ("empty body", b"", json_type),
        ("array", b"[" + valid + b"]", json_type),
        ("string", b'"x"', json_type),
        ("null", b"null", json_type),
        ("empty object", b"{}", json_type),
        ("empty string", with_value(b'""'), json_type),
        ("number", with_value(b"123456"), json_type),
        ("boolean", with_value(b"true"), json_type),
        ("null value", with_value(b"null"), json_type),
        ("object", with_value(b'{"$ne": ""}'), json_type),
        ("list", with_value(b'["x"]'), json_type),
        ("huge integer", with_value(b"9" * 5000), json_type),
        ("huge float", with_value(b"1e999"), json_type),
        ("deep nesting", with_value(b"[" * 20000 + b"]" * 20000), json_type),
        ("lone surrogate", with_value(b'"\\ud800 and more"'), json_type),
        ("NUL", with_value(b'"12\\u00003456"'), json_type),
        ("over-long", with_value(b'"' + b"1" * 5000 + b'"'), json_type),
        ("not UTF-8", with_value(b'"\xff\xfe"'), json_type),
        ("text/plain", valid, "text/plain"),
        (
            "form",
            b"&".join(b"%s=%s" % (k.encode(), v.encode()) for k, v in fields.items()),
            "application/x-www-form-urlencoded",
        ),
        ("no content type", valid, ""),
    ]


INVALID_REQUEST = {"success": False, "error": "Invalid request", "code": "invalid_request"}


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/mfa/totp", {"password": PASSWORD}),
        ("/mfa/totp/confirm", {"code": "123456"}),
        ("/mfa/totp/disable", {"code": "123456", "password": PASSWORD}),
        ("/mfa/totp/disable", {"password": PASSWORD, "code": "123456"}),
        ("/mfa/recovery-codes", {"password": PASSWORD}),
    ],
)
async def test_malformed_set_up_bodies_are_400_and_change_nothing(
    client: httpx.AsyncClient, clock: FakeClock, path: str, fields: dict[str, str]
) -> None:
    enrolled = await enrol(client, clock)
    for name, body, content_type in malformed(fields):
        response = await client.post(
            path, content=body, headers={**bearer(enrolled.session), "Content-Type": content_type}
        )
        assert (response.status_code, response.json()) == (400, INVALID_REQUEST), name
    assert (
        await mfa_status(client, enrolled.session) == b'{"success":true,"totp":true,"recoveryCodesLeft":10}'
    )
    # Nor did any count as a failed attempt: the throttle would make the sixth wait.
    assert (
        await second_step(client, await password_step(client), code=enrolled.code(clock))
    ).status_code == 200


async def test_malformed_second_steps_are_400_and_spend_nothing(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    enrolled = await enrol(client, clock)
    token = await password_step(client)
    cases = [
        *malformed({"mfaToken": token, "code": "123456"}),
        *malformed({"code": "123456", "mfaToken": token}),
        *malformed({"recoveryCode": enrolled.codes[0], "mfaToken": token}),
    ]
    for name, body, content_type in cases:
        response = await client.post("/login/mfa", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 400, name
        assert response.json()["code"] == "invalid_request", name
    neither_or_both = [
        {"mfaToken": token},
        {"mfaToken": token, "code": None, "recoveryCode": None},
        {"mfaToken": token, "code": enrolled.code(clock), "recoveryCode": enrolled.codes[0]},
    ]
    for body in neither_or_both:
        response = await client.post("/login/mfa", json=body)
        assert response.status_code == 400
        assert response.json() == {
            "success": False,
            "error": "Either a code or a recovery code is required",
            "code": "invalid_request",
        }
    assert (await second_step(client, token, code=enrolled.code(clock))).status_code == 200


@pytest.mark.parametrize("path", ["/login/mfa", *SET_UP_POSTS])
async def test_oversized_bodies_are_413(client: httpx.AsyncClient, path: str) -> None:
    await register(client)
    big = b'{"password": "' + b"x" * 70_000 + b'"}'
    response = await client.post(
        path, content=big, headers={**bearer(await login(client)), "Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")


# --- /openapi.json ------------------------------------------------------------------------------------


async def test_openapi_documents_the_mfa_endpoints_and_the_new_session_fields(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    documented = {
        ("get", "/mfa"): {"200", "401", "503"},
        ("post", "/mfa/totp"): {"200", "400", "401", "403", "409", "413", "429", "503"},
        ("post", "/mfa/totp/confirm"): {"200", "400", "401", "403", "409", "413", "503"},
        ("post", "/mfa/totp/disable"): {"200", "400", "401", "403", "409", "413", "429", "503"},
        ("post", "/mfa/recovery-codes"): {"200", "400", "401", "403", "409", "413", "429", "503"},
        ("post", "/login/mfa"): {"200", "400", "401", "413", "429", "503"},
    }
    for (method, path), statuses in documented.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses, path
        if method == "post":
            assert operation["requestBody"]["required"] is True
    login_mfa = paths["/login/mfa"]["post"]
    assert {"mfa_invalid", "mfa_token_invalid"} <= set(
        re.findall(r"\w+", login_mfa["responses"]["401"]["description"])
    )
    assert "invalid_request" in login_mfa["responses"]["400"]["description"]
    assert set(login_mfa["requestBody"]["content"]["application/json"]["schema"]["required"]) == {"mfaToken"}
    assert "totp_active" in paths["/mfa/totp"]["post"]["responses"]["409"]["description"]

    assert schemas["SessionOut"]["required"][-2:] == ["aal", "amr"]
    assert schemas["SessionListItem"]["required"][-2:] == ["aal", "amr"]
    for name in ("LoginOut", "SessionCheckOut"):
        assert "mfaEnrollmentRequired" in schemas[name]["properties"]
        assert "mfaEnrollmentRequired" not in schemas[name]["required"]
    assert schemas["MfaRequiredOut"]["required"] == ["success", "error", "code", "mfaToken", "methods"]


async def test_under_the_policy_the_app_as_the_last_factor_stays(database_url: str, clock: FakeClock) -> None:
    async with policy_app(database_url, clock) as client:
        enrolled = await enrol(client, clock)
        response = await client.post(
            "/mfa/totp/disable",
            json={"password": PASSWORD, "code": enrolled.code(clock)},
            headers=bearer(await at_level_two(client, enrolled, clock)),
        )
        assert response.status_code == 409
        assert response.json() == {
            "success": False,
            "error": "This is your last second factor: add another before removing it",
            "code": "last_factor",
        }
        assert await mfa_status(client, enrolled.session) == (
            b'{"success":true,"totp":true,"recoveryCodesLeft":10}'
        )
