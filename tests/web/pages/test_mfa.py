"""Two-step verification through the pages, in-process on both databases: setting it up from the account
page (the QR code, the key, the first code), the recovery codes shown once, the login's second step
with a code or a recovery code, new codes, turning it off, the MFA-required policy, CSRF on every new
form, and no secret or code in an address or a log line."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from doorward.core import totp
from doorward.core.models import User
from doorward.web.pages.mfa import CODES_FILE, grouped, qr_svg
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, register
from tests.db import fetch
from tests.web.pages.conftest import (
    COOKIE,
    EVIL,
    NEW_PASSWORD,
    SAME_SITE,
    Browser,
    assert_page_headers,
    browser_for,
    csrf_of,
    form_login,
    session_of,
)

SECRET = re.compile(r'<code id="secret">([A-Z2-7 ]+)</code>')
MFA_TOKEN = re.compile(r'<input type="hidden" name="mfa_token" value="([A-Za-z0-9_-]{43})">')
CODE_ITEM = re.compile(r"<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>")
DOWNLOAD = re.compile(
    r'<a href="data:text/plain;charset=utf-8,([^"]+)" download="([^"]+)">Download as .txt</a>'
)


def field_error(html: str, field: str) -> str:
    """The text in a field's error slot."""
    slot = re.search(rf'<p class="field-error" id="{field}-error" aria-live="polite">([^<]*)</p>', html)
    assert slot, f"no error slot for {field}"
    return slot.group(1)


def form_error(html: str, slot: str) -> str:
    found = re.search(
        rf'<p class="form-error" id="{slot}" role="alert" aria-live="assertive">([^<]*)</p>', html
    )
    assert found, f"no form error slot {slot}"
    return found.group(1)


def assert_no_inline_code(html: str) -> None:
    """What the CSP refuses (inline script and style), and a label for every input."""
    assert "<script>" not in html and "style=" not in html
    for label in re.findall(r'<label for="([^"]+)">', html):
        assert f'id="{label}"' in html


@dataclass
class Enrolled:
    """An account with two-step verification on, set up through the pages of ``browser``."""

    browser: httpx.AsyncClient
    secret: str
    codes: list[str]


async def start_setup(browser: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    csrf = await csrf_of(browser)
    return await browser.post(
        "/account/mfa/setup", data={"csrf_token": csrf, "password": password}, headers=SAME_SITE
    )


def secret_on(page: httpx.Response) -> str:
    shown = SECRET.search(page.text)
    assert shown, page.text
    return shown.group(1).replace(" ", "")


async def confirm(browser: httpx.AsyncClient, secret: str, code: str) -> httpx.Response:
    csrf = await csrf_of(browser)
    form = {"csrf_token": csrf, "secret": secret, "code": code}
    return await browser.post("/account/mfa/confirm", data=form, headers=SAME_SITE)


async def enrol(browser: httpx.AsyncClient, clock: FakeClock) -> tuple[str, list[str]]:
    """Set up two-step verification from the account page; the confirming code's step is then over."""
    secret = secret_on(await start_setup(browser))
    done = await confirm(browser, secret, pyotp.TOTP(secret).at(clock()))
    assert done.status_code == 200, done.text
    clock.advance(seconds=30)
    return secret, CODE_ITEM.findall(done.text)


@pytest.fixture
async def enrolled(client: httpx.AsyncClient, new_browser: Browser, clock: FakeClock) -> Enrolled:
    await register(client)
    browser = new_browser()
    await form_login(browser)
    secret, codes = await enrol(browser, clock)
    return Enrolled(browser, secret, codes)


async def at_level_two(enrolled: Enrolled, new_browser: Browser, clock: FakeClock) -> httpx.AsyncClient:
    """A browser signed in with the password and the app's code (aal 2): the one that may change the
    account's factors now that it has one. The code's step is then over."""
    browser = new_browser()
    token = token_on(await password_step(browser))
    done = await second_step(browser, token, code=pyotp.TOTP(enrolled.secret).at(clock()))
    assert done.status_code == 303, done.text
    clock.advance(seconds=30)
    return browser


async def password_step(browser: httpx.AsyncClient, email: str = EMAIL) -> httpx.Response:
    return await browser.post("/login/form", data={"email": email, "password": PASSWORD}, headers=SAME_SITE)


def token_on(page: httpx.Response) -> str:
    tokens = set(MFA_TOKEN.findall(page.text))
    assert len(tokens) == 1, page.text  # the same token in both forms
    return tokens.pop()


async def second_step(browser: httpx.AsyncClient, token: str, **form: str) -> httpx.Response:
    return await browser.post(
        "/login/mfa/form", data={"mfa_token": token, "email": EMAIL, **form}, headers=SAME_SITE
    )


# --- setting it up ---------------------------------------------------------------------------------


async def test_setting_up_shows_a_qr_code_and_the_key_then_the_recovery_codes_once(
    app: FastAPI, client: httpx.AsyncClient, new_browser: Browser, clock: FakeClock
) -> None:
    await register(client)
    browser = new_browser()
    await form_login(browser)
    account = await browser.get("/account")
    assert "Two-step verification" in account.text
    assert 'action="/account/mfa/setup"' in account.text
    assert 'action="/account/mfa/disable"' not in account.text

    wrong = await start_setup(browser, "not the password at all")
    assert wrong.status_code == 400
    assert field_error(wrong.text, "mfa_password") == "The current password is not correct"
    assert_page_headers(wrong)

    setup = await start_setup(browser)
    assert setup.status_code == 200
    assert_page_headers(setup)
    assert_no_inline_code(setup.text)
    secret = secret_on(setup)
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert f'<code id="secret">{grouped(secret)}</code>' in setup.text  # eight groups of four
    # The QR code is inline SVG, drawn on the server from the otpauth URI of this secret and account.
    assert str(qr_svg(totp.otpauth_uri(secret, EMAIL))) in setup.text
    assert '<svg role="img" aria-label="QR code for your authenticator app"' in setup.text
    assert 'autocomplete="one-time-code"' in setup.text and 'inputmode="numeric"' in setup.text

    # A mistyped code: the same key and QR code again, the reason next to the field.
    typo = await confirm(
        browser, secret, "000000" if pyotp.TOTP(secret).at(clock()) != "000000" else "111111"
    )
    assert typo.status_code == 400
    assert field_error(typo.text, "code") == "Invalid code"
    assert secret_on(typo) == secret

    done = await confirm(browser, secret, pyotp.TOTP(secret).at(clock()))
    assert done.status_code == 200
    assert_page_headers(done)
    assert_no_inline_code(done.text)
    assert "Two-step verification is on." in done.text
    codes = CODE_ITEM.findall(done.text)
    assert len(codes) == len(set(codes)) == 10
    link = DOWNLOAD.search(done.text)
    assert link and link.group(2) == CODES_FILE
    text = unquote(link.group(1))
    assert text.startswith(f"doorward recovery codes for {EMAIL}\n")
    assert text.splitlines()[-10:] == codes
    assert 'href="/account?done=mfa_on"' in done.text

    page = await browser.get("/account?done=mfa_on")
    assert "Two-step verification is on: logging in now asks for a code" in page.text
    assert "Recovery codes left: <strong>10</strong>" in page.text
    assert 'action="/account/mfa/setup"' not in page.text
    assert secret not in page.text and not any(code in page.text for code in codes)  # shown that once
    status = await app.state.services.mfa.status(await user_of(app))
    assert (status.totp, status.recovery_codes_left) == (True, 10)


async def user_of(app: FastAPI, email: str = EMAIL) -> User:
    async with app.state.services.store.read() as tx:
        user = await tx.users.by_canonical_email(email)
    assert user is not None
    return user


async def test_a_second_set_up_replaces_the_first_key(
    client: httpx.AsyncClient, new_browser: Browser, clock: FakeClock
) -> None:
    await register(client)
    browser = new_browser()
    await form_login(browser)
    first = secret_on(await start_setup(browser))
    second = secret_on(await start_setup(browser))
    assert first != second
    stale = await confirm(browser, second, pyotp.TOTP(first).at(clock()))
    assert stale.status_code == 400
    assert (await confirm(browser, second, pyotp.TOTP(second).at(clock()))).status_code == 200


async def test_set_up_refusals_show_on_the_account_page(enrolled: Enrolled, clock: FakeClock) -> None:
    browser = enrolled.browser
    again = await start_setup(browser)
    assert again.status_code == 409
    assert form_error(again.text, "mfa-error") == "Two-step verification is already on"
    confirmed = await confirm(browser, enrolled.secret, pyotp.TOTP(enrolled.secret).at(clock()))
    assert confirmed.status_code == 409
    assert form_error(confirmed.text, "mfa-error") == "Two-step verification is already on"


async def test_a_confirmation_without_a_set_up_or_with_a_key_not_ours(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    await form_login(browser)
    nothing = await confirm(browser, "A" * 32, "123456")
    assert nothing.status_code == 409
    assert form_error(nothing.text, "mfa-error") == "Start the set-up first"

    await start_setup(browser)
    forged = await confirm(browser, '"><svg onload=alert(1)>', "123456")
    assert forged.status_code == 400
    assert "onload" not in forged.text  # not shown again: the set-up starts over
    assert form_error(forged.text, "mfa-error") == "Invalid code"


# --- the login's second step -----------------------------------------------------------------------


async def test_the_second_step_with_a_code_opens_the_session(
    app: FastAPI, client: httpx.AsyncClient, enrolled: Enrolled, new_browser: Browser, clock: FakeClock
) -> None:
    browser = new_browser()
    asked = await password_step(browser)
    assert asked.status_code == 200
    assert_page_headers(asked)
    assert_no_inline_code(asked.text)
    assert "set-cookie" not in asked.headers
    assert "<h1>Two-step verification</h1>" in asked.text
    assert re.search(r'id="code"[^>]*autocomplete="one-time-code"[^>]*inputmode="numeric"', asked.text)
    assert re.search(r'id="code"[^>]*autofocus', asked.text)
    assert "<details" in asked.text and "Use a recovery code instead" in asked.text
    assert PASSWORD not in asked.text
    token = token_on(asked)
    assert (await browser.get("/account")).headers["location"] == "/login"  # no session yet

    code = pyotp.TOTP(enrolled.secret).at(clock())
    wrong = await second_step(browser, token, code=f"{(int(code) + 1) % 1_000_000:06d}")
    assert wrong.status_code == 401
    assert field_error(wrong.text, "code") == "Invalid code"
    assert token_on(wrong) == token
    assert "set-cookie" not in wrong.headers

    done = await second_step(browser, token, code=code)
    assert (done.status_code, done.headers["location"]) == (303, "/account")
    match = COOKIE.fullmatch(done.headers["set-cookie"])
    assert match
    user, session = await app.state.services.auth.check(match.group(1))
    assert (user.email, session.aal, session.amr) == (EMAIL, 2, ("pwd", "otp"))
    assert (await browser.get("/account")).status_code == 200

    # The code is used up: another sign-in cannot use it again.
    other = new_browser()
    replayed = await second_step(other, token_on(await password_step(other)), code=code)
    assert replayed.status_code == 401
    assert field_error(replayed.text, "code") == "Invalid code"

    # The token is spent: a replay of the form goes back to the password, the email kept.
    replay = await second_step(new_browser(), token, code=code)
    assert replay.status_code == 401
    assert form_error(replay.text, "login-error") == "Sign-in expired, start again"
    assert f'value="{EMAIL}"' in replay.text
    assert 'action="/login/form"' in replay.text


async def test_the_second_step_replaces_the_browsers_earlier_session(
    client: httpx.AsyncClient, enrolled: Enrolled, clock: FakeClock
) -> None:
    old = await session_token(enrolled.browser)
    token = token_on(await password_step(enrolled.browser))
    done = await second_step(enrolled.browser, token, code=pyotp.TOTP(enrolled.secret).at(clock()))
    assert done.status_code == 303
    assert await session_of(old, client) == 401


async def session_token(browser: httpx.AsyncClient) -> str:
    (value,) = [cookie.value for cookie in browser.cookies.jar if cookie.name == "__Host-doorward_session"]
    assert value is not None
    return value


async def test_a_recovery_code_logs_in_once(app: FastAPI, enrolled: Enrolled, new_browser: Browser) -> None:
    browser = new_browser()
    token = token_on(await password_step(browser))
    typo = await second_step(browser, token, recovery_code="zzzzz-zzzzz")
    assert typo.status_code == 401
    assert field_error(typo.text, "recovery_code") == "Invalid code"
    assert '<details class="alternative" open>' in typo.text  # the recovery form stays open
    assert re.search(r'id="recovery_code"[^>]*autofocus', typo.text)

    code = enrolled.codes[0]
    done = await second_step(browser, token, recovery_code=code.upper().replace("-", " "))  # as typed
    assert (done.status_code, done.headers["location"]) == (303, "/account")
    assert "Recovery codes left: <strong>9</strong>" in (await browser.get("/account")).text

    again = new_browser()
    used = await second_step(again, token_on(await password_step(again)), recovery_code=code)
    assert used.status_code == 401
    assert field_error(used.text, "recovery_code") == "Invalid code"


async def test_the_sign_in_expires(enrolled: Enrolled, new_browser: Browser, clock: FakeClock) -> None:
    browser = new_browser()
    token = token_on(await password_step(browser))
    clock.advance(minutes=5)
    late = await second_step(browser, token, code=pyotp.TOTP(enrolled.secret).at(clock()))
    assert late.status_code == 401
    assert form_error(late.text, "login-error") == "Sign-in expired, start again"
    assert "set-cookie" not in late.headers


@pytest.mark.parametrize("form", [{}, {"mfa_token": "not-a-token", "code": "123456"}])
async def test_a_second_step_without_a_sign_in_goes_back_to_the_password(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await client.post("/login/mfa/form", data=form, headers={"Origin": "http://testserver"})
    assert response.status_code == 401
    assert form_error(response.text, "login-error") == "Sign-in expired, start again"


async def test_five_wrong_codes_spend_the_sign_in(database_url: str, clock: FakeClock) -> None:
    async with app_for(database_url, clock, base_url="https://testserver", throttle_free_failures=20) as (
        app,
        client,
    ):
        await register(client)
        async with browser_for(app) as browser:
            await form_login(browser)
            secret, _ = await enrol(browser, clock)
        async with browser_for(app) as browser:
            token = token_on(await password_step(browser))
            right = pyotp.TOTP(secret).at(clock())
            wrong = f"{(int(right) + 1) % 1_000_000:06d}"
            for _ in range(5):
                response = await second_step(browser, token, code=wrong)
                assert response.status_code == 401
                assert field_error(response.text, "code") == "Invalid code"
            spent = await second_step(browser, token, code=right)
            assert form_error(spent.text, "login-error") == "Sign-in expired, start again"


async def test_a_throttled_second_step_says_how_long_to_wait(database_url: str, clock: FakeClock) -> None:
    async with app_for(database_url, clock, base_url="https://testserver", throttle_free_failures=1) as (
        app,
        client,
    ):
        await register(client)
        async with browser_for(app) as browser:
            await form_login(browser)
            secret, _ = await enrol(browser, clock)
        async with browser_for(app) as browser:
            token = token_on(await password_step(browser))
            right = pyotp.TOTP(secret).at(clock())
            first = await second_step(browser, token, code=f"{(int(right) + 1) % 1_000_000:06d}")
            assert first.status_code == 401
            throttled = await second_step(browser, token, code=right)
            assert throttled.status_code == 429
            wait = throttled.headers["retry-after"]
            unit = "second" if wait == "1" else "seconds"
            assert (
                form_error(throttled.text, "second-step-error")
                == f"Too many attempts, try again in {wait} {unit}"
            )
            assert token_on(throttled) == token  # the sign-in is still there after the wait
            clock.advance(seconds=int(wait))
            done = await second_step(browser, token, code=pyotp.TOTP(secret).at(clock()))
            assert done.status_code == 303


# --- new recovery codes, turning it off ------------------------------------------------------------


async def test_a_browser_signed_in_with_the_password_alone_changes_no_factor(
    enrolled: Enrolled, new_browser: Browser, clock: FakeClock
) -> None:
    browser = enrolled.browser  # it set the app up, signed in with the password: aal 1
    csrf = await csrf_of(browser)
    code = pyotp.TOTP(enrolled.secret).at(clock())
    for path, form in [
        ("/account/mfa/recovery-codes", {"password": PASSWORD}),
        ("/account/mfa/disable", {"password": PASSWORD, "code": code}),
    ]:
        refused = await browser.post(path, data={"csrf_token": csrf, **form}, headers=SAME_SITE)
        assert refused.status_code == 403, path
        assert form_error(refused.text, "codes-error" if "codes" in path else "off-error") == (
            "Sign in with your second factor first"
        )
    assert '<span class="tag">On</span>' in (await browser.get("/account")).text  # still on
    strong = await at_level_two(enrolled, new_browser, clock)
    fresh = await strong.post(
        "/account/mfa/recovery-codes",
        data={"csrf_token": await csrf_of(strong), "password": PASSWORD},
        headers=SAME_SITE,
    )
    assert fresh.status_code == 200


async def test_new_recovery_codes_replace_the_old_ones(
    enrolled: Enrolled, new_browser: Browser, clock: FakeClock
) -> None:
    browser = await at_level_two(enrolled, new_browser, clock)
    csrf = await csrf_of(browser)
    wrong = await browser.post(
        "/account/mfa/recovery-codes", data={"csrf_token": csrf, "password": "wrong"}, headers=SAME_SITE
    )
    assert wrong.status_code == 400
    assert field_error(wrong.text, "codes_password") == "The current password is not correct"

    fresh = await browser.post(
        "/account/mfa/recovery-codes", data={"csrf_token": csrf, "password": PASSWORD}, headers=SAME_SITE
    )
    assert fresh.status_code == 200
    assert_page_headers(fresh)
    codes = CODE_ITEM.findall(fresh.text)
    assert len(codes) == 10 and not set(codes) & set(enrolled.codes)
    assert "Your earlier codes no longer work." in fresh.text
    assert 'href="/account?done=codes_new"' in fresh.text

    other = new_browser()
    token = token_on(await password_step(other))
    assert (await second_step(other, token, recovery_code=enrolled.codes[1])).status_code == 401
    assert (await second_step(other, token, recovery_code=codes[0])).status_code == 303


async def test_turning_it_off(enrolled: Enrolled, new_browser: Browser, clock: FakeClock) -> None:
    browser = await at_level_two(enrolled, new_browser, clock)
    csrf = await csrf_of(browser)
    code = pyotp.TOTP(enrolled.secret).at(clock())

    async def turn_off(password: str, code: str) -> httpx.Response:
        form = {"csrf_token": csrf, "password": password, "code": code}
        return await browser.post("/account/mfa/disable", data=form, headers=SAME_SITE)

    wrong_password = await turn_off("not it", code)
    assert wrong_password.status_code == 400
    assert field_error(wrong_password.text, "off_password") == "The current password is not correct"
    wrong_code = await turn_off(PASSWORD, "zzzzz-zzzzz")
    assert wrong_code.status_code == 400
    assert field_error(wrong_code.text, "off_code") == "Invalid code"

    done = await turn_off(PASSWORD, code)
    assert (done.status_code, done.headers["location"]) == (303, "/account?done=mfa_off")
    page = await browser.get(done.headers["location"])
    assert "Two-step verification is off" in page.text
    assert 'action="/account/mfa/setup"' in page.text
    await form_login(new_browser())  # the password alone again


async def test_turning_it_off_with_a_recovery_code(
    enrolled: Enrolled, new_browser: Browser, clock: FakeClock
) -> None:
    browser = await at_level_two(enrolled, new_browser, clock)
    csrf = await csrf_of(browser)
    form = {"csrf_token": csrf, "password": PASSWORD, "code": enrolled.codes[3]}
    done = await browser.post("/account/mfa/disable", data=form, headers=SAME_SITE)
    assert done.headers["location"] == "/account?done=mfa_off"


# --- the defences ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/account/mfa/setup", {"password": PASSWORD}),
        ("/account/mfa/confirm", {"secret": "A" * 32, "code": "123456"}),
        ("/account/mfa/recovery-codes", {"password": PASSWORD}),
        ("/account/mfa/disable", {"password": PASSWORD, "code": "123456"}),
    ],
)
async def test_the_account_forms_need_the_csrf_token(
    app: FastAPI, enrolled: Enrolled, clock: FakeClock, path: str, form: dict[str, str]
) -> None:
    before = await app.state.services.mfa.status(await user_of(app))
    for headers, token in ((SAME_SITE, None), (SAME_SITE, "x" * 43), (EVIL, await csrf_of(enrolled.browser))):
        data = form if token is None else {**form, "csrf_token": token}
        response = await enrolled.browser.post(path, data=data, headers=headers)
        assert response.status_code == 403, (path, headers, token)
        assert "Cross-site request refused" in response.text
        assert enrolled.secret not in response.text
    assert await app.state.services.mfa.status(await user_of(app)) == before


async def test_the_second_step_checks_the_origin(
    enrolled: Enrolled, new_browser: Browser, clock: FakeClock
) -> None:
    browser = new_browser()
    token = token_on(await password_step(browser))
    code = pyotp.TOTP(enrolled.secret).at(clock())
    refused = await browser.post("/login/mfa/form", data={"mfa_token": token, "code": code}, headers=EVIL)
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers
    assert (await second_step(browser, token, code=code)).status_code == 303  # nothing was used up

    # A browser that already has a session needs no CSRF token for it: the second step reads none.
    again = token_on(await password_step(browser))
    clock.advance(seconds=30)
    later = await second_step(browser, again, code=pyotp.TOTP(enrolled.secret).at(clock()))
    assert later.status_code == 303


async def test_no_secret_code_or_token_reaches_an_address_or_a_log(
    app: FastAPI,
    client: httpx.AsyncClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    settings: object,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async def on_response(response: httpx.Response) -> None:
        seen.append(response.headers.get("location", ""))

    await register(client)
    browser = browser_for(app)
    browser.event_hooks = {"request": [on_request], "response": [on_response]}
    async with browser:
        await form_login(browser)
        secret, codes = await enrol(browser, clock)
        asked = await password_step(browser)
        token = token_on(asked)
        code = pyotp.TOTP(secret).at(clock())
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        await second_step(browser, token, code=wrong)
        assert (await second_step(browser, token, code=code)).status_code == 303
        token2 = token_on(await password_step(browser))
        assert (await second_step(browser, token2, recovery_code=codes[0])).status_code == 303
        csrf = await csrf_of(browser)
        regenerated = await browser.post(
            "/account/mfa/recovery-codes", data={"csrf_token": csrf, "password": PASSWORD}, headers=SAME_SITE
        )
        codes += CODE_ITEM.findall(regenerated.text)

    await app.state.services.audit_sink.flush()
    audit = await fetch(app.state.services.settings.database_url, "SELECT event, detail FROM audit_events")
    logged = [str(record.__dict__) for record in caplog.records] + [str(row) for row in audit]
    assert any("mfa.recovery_code_used" in line for line in logged)  # the log did see the flow
    secrets = [
        secret,
        grouped(secret),
        token,
        token2,
        code,
        wrong,
        PASSWORD,
        *codes,
        *(c.replace("-", "") for c in codes),
    ]
    for value in secrets:
        assert not [url for url in seen if value in url], value
        assert not [line for line in logged if value in line], value


# --- DOORWARD_REQUIRE_MFA ------------------------------------------------------------------------


@pytest.fixture
async def policy_app(database_url: str, clock: FakeClock) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_for(database_url, clock, base_url="https://testserver", require_mfa=True) as started:
        yield started


async def test_the_policy_confines_an_account_without_a_factor_to_the_set_up(
    policy_app: tuple[FastAPI, httpx.AsyncClient], clock: FakeClock
) -> None:
    app, client = policy_app
    await register(client)
    async with browser_for(app) as browser, browser_for(app) as other:
        token = await form_login(browser)  # the password alone opens a session, of level 1
        other_token = await form_login(other)
        page = await browser.get("/account")
        assert page.status_code == 200
        assert 'action="/account/mfa/setup"' in page.text
        assert 'action="/logout/form"' in page.text
        assert "Sessions" not in page.text and 'action="/account/password"' not in page.text
        assert re.search(r'id="mfa_password"[^>]*autofocus', page.text)
        assert_no_inline_code(page.text)

        csrf = await csrf_of(browser)
        user, current = await app.state.services.auth.check(token)
        listed = await app.state.services.auth.list_sessions(user.id)
        other_id = next(s.id for s in listed if s.id != current.id)
        actions = [
            ("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
            ("/account/sessions/revoke-others", {}),
            (f"/account/sessions/{other_id}/revoke", {}),
            ("/account/mfa/recovery-codes", {"password": PASSWORD}),
            ("/account/mfa/disable", {"password": PASSWORD, "code": "123456"}),
        ]
        for path, form in actions:
            refused = await browser.post(path, data={"csrf_token": csrf, **form}, headers=SAME_SITE)
            assert refused.status_code == 403, path
            assert form_error(refused.text, "mfa-error") == "Set up two-step verification first"
            assert 'action="/account/mfa/setup"' in refused.text
        assert await session_of(other_token, client) == 200  # nothing was done
        assert await session_of(token, client) == 200

        # Logging out is open, and the set-up; then everything is.
        done = await other.post("/logout/form", data={"csrf_token": await csrf_of(other)}, headers=SAME_SITE)
        assert done.headers["location"] == "/login?done=logged_out"
        assert await session_of(other_token, client) == 401
        await enrol(browser, clock)
        page = await browser.get("/account")
        assert "Sessions" in page.text and 'action="/account/password"' in page.text
