"""The browser pages in-process: headers, the session cookie, CSRF refusals, CORS, and each form's answers."""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import AsyncIterator, Callable
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from doorward.core.tokens import token_digest
from doorward.web.pages import describe_device
from doorward.web.security import origin_of
from tests.conftest import EMAIL, PASSWORD, bearer, login, make_settings, register, running
from tests.mailbox import link_token

ORIGIN = "https://testserver"
SAME_SITE = {"Origin": ORIGIN}
EVIL = {"Origin": "https://evil.example"}
NEW_PASSWORD = "a brand new passphrase for ada"
COOKIE = re.compile(r"__Host-doorward_session=([A-Za-z0-9_-]{43}); Path=/; Secure; HttpOnly; SameSite=Lax")
CSRF_ENVELOPE = {"success": False, "error": "Cross-site request refused", "code": "csrf"}
PAGES = ["/login", "/register", "/password/reset", "/email/verify"]

Browser = Callable[[], httpx.AsyncClient]


def browser_for(app: FastAPI) -> httpx.AsyncClient:
    """A client that keeps cookies like a browser on https://testserver (Secure cookies need https)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)


@pytest.fixture
async def new_browser(app: FastAPI) -> AsyncIterator[Browser]:
    opened: list[httpx.AsyncClient] = []

    def new() -> httpx.AsyncClient:
        opened.append(browser_for(app))
        return opened[-1]

    yield new
    for client in opened:
        await client.aclose()


async def form_login(browser: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    """Log in through the form; the browser keeps the cookie. Returns the session token (for checks)."""
    response = await browser.post(
        "/login/form", data={"email": email, "password": password}, headers=SAME_SITE
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account"
    match = COOKIE.fullmatch(response.headers["set-cookie"])
    assert match, response.headers["set-cookie"]
    return match.group(1)


async def csrf_of(browser: httpx.AsyncClient) -> str:
    page = await browser.get("/account")
    assert page.status_code == 200, page.text
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert meta
    fields = re.findall(r'name="csrf_token" value="([^"]+)"', page.text)
    assert fields and set(fields) == {meta.group(1)}
    return meta.group(1)


async def session_of(token: str, client: httpx.AsyncClient) -> int:
    return (await client.get("/session", headers=bearer(token))).status_code


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = response.headers["content-security-policy"]
    csp = {name: value for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))}
    assert csp["default-src"] in {"'self'", "'none'"}
    assert csp["script-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["form-action"] == "'self'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]


# --- pages and what they carry -----------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
async def test_pages_render_with_their_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert_page_headers(response)
    html = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<link rel="stylesheet" href="/static/doorward.css">' in html
    assert '<script src="/static/doorward.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html  # the CSP allows neither inline
    for label in re.findall(r'<label for="([^"]+)">', html):
        assert f'id="{label}"' in html


async def test_static_files_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    css = await client.get("/static/doorward.css")
    assert (css.status_code, css.headers["content-type"]) == (200, "text/css; charset=utf-8")
    script = await client.get("/static/doorward.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.headers["x-content-type-options"] == "nosniff"


async def test_the_password_minimum_on_the_page_comes_from_the_settings(database_url: str) -> None:
    async with running(make_settings(database_url, password_min_length=20), base_url=ORIGIN) as (_, client):
        page = (await client.get("/register")).text
    assert 'data-min="20"' in page and 'minlength="20"' in page and 'data-max="1024"' in page
    assert "At least 20 characters" in page


async def test_pages_stay_out_of_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not {"/login/form", "/register/form", "/logout/form", "/account"} & set(paths)
    assert "get" not in paths["/login"]


async def test_the_api_docs_keep_working_without_the_page_csp(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers
    assert docs.headers["x-frame-options"] == "DENY"


async def test_notices_come_from_a_fixed_table(client: httpx.AsyncClient) -> None:
    shown = await client.get("/login?done=logged_out")
    assert "You have logged out." in shown.text
    echoed = await client.get("/login", params={"done": "<script>alert(1)</script>"})
    assert "alert(1)" not in echoed.text


# --- logging in with the form --------------------------------------------------------------------------


async def test_form_login_sets_the_cookie_and_the_account_page_shows_the_user(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)

    account = await browser.get("/account")
    assert account.status_code == 200
    assert_page_headers(account)
    assert EMAIL in account.text
    assert token not in account.text

    check = await browser.get("/session")  # the cookie alone, no Authorization header
    assert check.status_code == 200
    assert check.json()["user"]["email"] == EMAIL
    assert token not in check.text
    assert "cookie" not in check.headers.get("set-cookie", "")


async def test_the_login_page_sends_a_logged_in_browser_on_to_its_account(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    assert (await browser.get("/account")).headers["location"] == "/login"
    await form_login(browser)
    assert (await browser.get("/login")).headers["location"] == "/account"


async def test_logging_in_again_ends_the_browsers_previous_session(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    first = await form_login(browser)
    second = await form_login(browser)
    assert first != second
    assert await session_of(first, client) == 401
    assert await session_of(second, client) == 200


async def test_without_cookie_secure_the_cookie_has_no_prefix_and_no_secure(database_url: str) -> None:
    async with running(make_settings(database_url, cookie_secure=False)) as (_, client):
        await register(client)
        response = await client.post(
            "/login/form",
            data={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": "http://testserver"},
        )
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert re.fullmatch(r"doorward_session=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Lax", cookie)
        assert (await client.get("/session")).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {"email": "nobody@example.com", "password": PASSWORD},
        {"email": EMAIL, "password": "wrong " + PASSWORD},
        {"email": "disabled@example.com", "password": PASSWORD},
        {"email": EMAIL, "password": ""},
        {"email": EMAIL},
    ],
)
async def test_every_login_failure_shows_the_same_message(
    client: httpx.AsyncClient, app: FastAPI, new_browser: Browser, form: dict[str, str]
) -> None:
    await register(client)
    await register(client, "disabled@example.com")
    await app.state.services.admin.disable_user("disabled@example.com")
    response = await new_browser().post("/login/form", data=form, headers=SAME_SITE)
    assert response.status_code == 400
    assert_page_headers(response)
    assert (
        '<p class="form-error" id="login-error" role="alert" aria-live="assertive">Invalid credentials</p>'
        in (response.text)
    )
    assert "set-cookie" not in response.headers
    assert f'value="{form["email"]}"' in response.text  # the email stays, the password does not
    assert PASSWORD not in response.text


async def test_a_throttled_login_says_how_long_to_wait(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    for _ in range(10):
        response = await browser.post(
            "/login/form", data={"email": EMAIL, "password": "wrong " + PASSWORD}, headers=SAME_SITE
        )
        if response.status_code == 429:
            break
    assert response.status_code == 429
    wait = response.headers["retry-after"]
    unit = "second" if wait == "1" else "seconds"
    assert f"Too many attempts, try again in {wait} {unit}" in response.text


# --- registering -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password", "status", "field", "reason"),
    [
        (EMAIL, "too short", 400, "password", "Password must be at least 15 characters"),
        (
            EMAIL,
            "passwordpassword1",
            400,
            "password",
            "This password is too common; choose one that is harder",
        ),
        (EMAIL, "ada@example.com is my password", 400, "password", "must not contain your email address"),
        ("not an email", PASSWORD, 400, "email", "Email address is not valid"),
    ],
)
async def test_registration_refusals_say_why_next_to_the_field(
    client: httpx.AsyncClient, email: str, password: str, status: int, field: str, reason: str
) -> None:
    response = await client.post(
        "/register/form", data={"email": email, "password": password}, headers={"Origin": "http://testserver"}
    )
    assert response.status_code == status
    assert_page_headers(response)
    slot = re.search(
        rf'<p class="field-error" id="{field}-error" aria-live="polite">([^<]*)</p>', response.text
    )
    assert slot and reason in slot.group(1).replace("&#39;", "'")
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', response.text)


async def test_registration_then_login(client: httpx.AsyncClient, new_browser: Browser) -> None:
    browser = new_browser()
    response = await browser.post(
        "/register/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
    )
    assert (response.status_code, response.headers["location"]) == (303, "/login?done=registered")
    assert "set-cookie" not in response.headers
    assert "Your account is ready" in (await browser.get(response.headers["location"])).text
    await form_login(browser)
    taken = await browser.post(
        "/register/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
    )
    assert taken.status_code == 409


# --- CSRF --------------------------------------------------------------------------------------------------


async def test_a_cross_site_logout_form_is_refused_and_the_session_survives(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)

    refused = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=EVIL)
    assert refused.status_code == 403
    assert_page_headers(refused)
    assert "Cross-site request refused" in refused.text
    assert "set-cookie" not in refused.headers
    assert await session_of(token, client) == 200

    # The JSON logout with the cookie: an API caller gets the envelope.
    json_refused = await browser.post("/logout", headers={**EVIL, "X-CSRF-Token": csrf})
    assert (json_refused.status_code, json_refused.json()) == (403, CSRF_ENVELOPE)
    assert json_refused.headers["content-type"] == "application/json; charset=utf-8"
    assert await session_of(token, client) == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver"},  # another scheme is another origin
        {"Origin": "https://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {},  # neither Origin nor Sec-Fetch-Site
    ],
)
async def test_origins_other_than_ours_are_refused(
    client: httpx.AsyncClient, new_browser: Browser, headers: dict[str, str]
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    response = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=headers)
    assert response.status_code == 403
    assert await session_of(token, client) == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    ],
)
async def test_without_origin_sec_fetch_site_decides(
    client: httpx.AsyncClient, new_browser: Browser, headers: dict[str, str]
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    response = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=headers)
    assert response.status_code == 303
    assert await session_of(token, client) == 401


async def test_the_database_alone_does_not_give_a_sessions_csrf_token(
    client: httpx.AsyncClient, app: FastAPI, new_browser: Browser
) -> None:
    # The key sits in the database beside each session's token digest: an HMAC of the digest
    # could be computed from a dump. The token is an HMAC of the raw token, stored nowhere.
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    key = app.state.services.csrf_key
    from_the_dump = base64.urlsafe_b64encode(hmac.new(key, token_digest(token), "sha256").digest())
    assert await csrf_of(browser) != from_the_dump.rstrip(b"=").decode()


async def test_a_missing_or_wrong_csrf_token_is_refused(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    other = new_browser()
    await form_login(other)
    someone_elses = await csrf_of(other)

    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    assert csrf != someone_elses
    for form in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 43}, {"csrf_token": someone_elses}):
        response = await browser.post("/logout/form", data=form, headers=SAME_SITE)
        assert response.status_code == 403, form
        assert await session_of(token, client) == 200
    done = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=SAME_SITE)
    assert (done.status_code, done.headers["location"]) == (303, "/login?done=logged_out")
    assert (
        done.headers["set-cookie"]
        == "__Host-doorward_session=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
    )
    assert await session_of(token, client) == 401


async def test_json_calls_with_the_cookie_need_the_csrf_header(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)

    missing = await browser.post("/logout", headers=SAME_SITE)
    assert (missing.status_code, missing.json()) == (403, CSRF_ENVELOPE)
    assert await session_of(token, client) == 200

    done = await browser.post("/logout", headers={**SAME_SITE, "X-CSRF-Token": csrf})
    assert (done.status_code, done.json()) == (200, {"success": True})
    assert await session_of(token, client) == 401


async def test_bearer_calls_need_no_csrf_token_even_from_elsewhere(client: httpx.AsyncClient) -> None:
    await register(client)
    token = await login(client)
    response = await client.post("/logout", headers={**bearer(token), **EVIL})
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert await session_of(token, client) == 401


async def test_the_login_and_register_forms_check_the_origin(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    response = await browser.post("/login/form", data={"email": EMAIL, "password": PASSWORD}, headers=EVIL)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    created = await browser.post(
        "/register/form", data={"email": "mallory@example.com", "password": PASSWORD}, headers=EVIL
    )
    assert created.status_code == 403
    refused = await client.post("/login", json={"email": "mallory@example.com", "password": PASSWORD})
    assert refused.status_code == 401  # no account was made


async def test_the_public_url_is_an_origin_of_ours(database_url: str) -> None:
    settings = make_settings(database_url, public_url="https://login.example.com/")
    async with running(settings, base_url=ORIGIN) as (_, browser):
        await register(browser)
        token = await form_login(browser)
        csrf = await csrf_of(browser)
        response = await browser.post(
            "/logout/form", data={"csrf_token": csrf}, headers={"Origin": "https://login.example.com"}
        )
        assert response.status_code == 303
        assert await session_of(token, browser) == 401


async def test_a_junk_cookie_authenticates_nothing_and_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/logout", headers={"Cookie": "__Host-doorward_session=junk"})
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert (
        await client.get("/session", headers={"Cookie": "__Host-doorward_session=junk"})
    ).status_code == 401


async def test_an_oversized_form_is_413(client: httpx.AsyncClient, new_browser: Browser) -> None:
    await register(client)
    browser = new_browser()
    await form_login(browser)
    big = {"csrf_token": "x", "padding": "y" * 70_000}
    assert (await browser.post("/logout/form", data=big, headers=SAME_SITE)).status_code == 413
    assert (await browser.post("/login/form", data=big, headers=SAME_SITE)).status_code == 400


# --- CORS ------------------------------------------------------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_preflight_answers_only_allowed_origins(database_url: str) -> None:
    settings = make_settings(database_url, cors_origins="https://app.example.com, https://admin.example.com")
    async with running(settings, base_url=ORIGIN) as (_, client):
        allowed = await client.options("/login", headers=preflight("https://app.example.com"))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers

        other = await client.options("/login", headers=preflight("https://evil.example"))
        assert "access-control-allow-origin" not in other.headers

        await register(client)
        token = await login(client)
        simple = await client.get(
            "/session", headers={**bearer(token), "Origin": "https://admin.example.com"}
        )
        assert simple.headers["access-control-allow-origin"] == "https://admin.example.com"


async def test_no_cors_by_default(client: httpx.AsyncClient) -> None:
    response = await client.options("/login", headers=preflight("https://app.example.com"))
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in simple.headers


# --- the account page ------------------------------------------------------------------------------


async def test_the_account_page_lists_sessions_and_ends_one(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    laptop, phone = new_browser(), new_browser()
    laptop_token = await form_login(laptop)
    phone_token = await form_login(phone)
    csrf = await csrf_of(laptop)

    page = (await laptop.get("/account")).text
    revokable = re.findall(r'action="/account/sessions/([A-Za-z0-9_-]+)/revoke"', page)
    assert len(revokable) == 1  # the phone's; this browser logs out instead
    assert page.count("this browser") == 1

    ended = await laptop.post(
        f"/account/sessions/{revokable[0]}/revoke", data={"csrf_token": csrf}, headers=SAME_SITE
    )
    assert (ended.status_code, ended.headers["location"]) == (303, "/account?done=revoked")
    assert await session_of(phone_token, client) == 401
    assert await session_of(laptop_token, client) == 200
    assert "That session has ended." in (await laptop.get("/account?done=revoked")).text

    again = await laptop.post(
        f"/account/sessions/{revokable[0]}/revoke", data={"csrf_token": csrf}, headers=SAME_SITE
    )
    assert again.headers["location"] == "/account?done=gone"


async def test_ending_all_other_sessions(client: httpx.AsyncClient, new_browser: Browser) -> None:
    await register(client)
    browsers = [new_browser() for _ in range(3)]
    tokens = [await form_login(b) for b in browsers]
    csrf = await csrf_of(browsers[0])
    response = await browsers[0].post(
        "/account/sessions/revoke-others", data={"csrf_token": csrf}, headers=SAME_SITE
    )
    assert response.headers["location"] == "/account?done=others_ended"
    assert [await session_of(t, client) for t in tokens] == [200, 401, 401]


async def test_changing_the_password(client: httpx.AsyncClient, new_browser: Browser) -> None:
    await register(client)
    browser, other = new_browser(), new_browser()
    token = await form_login(browser)
    other_token = await form_login(other)
    csrf = await csrf_of(browser)

    async def change(current: str, new: str) -> httpx.Response:
        form = {"csrf_token": csrf, "current_password": current, "new_password": new}
        return await browser.post("/account/password", data=form, headers=SAME_SITE)

    wrong = await change("not it at all, sorry", NEW_PASSWORD)
    assert wrong.status_code == 400
    assert "The current password is not correct" in wrong.text
    assert_page_headers(wrong)
    weak = await change(PASSWORD, "short")
    assert weak.status_code == 400
    assert "Password must be at least 15 characters" in weak.text

    done = await change(PASSWORD, NEW_PASSWORD)
    assert (done.status_code, done.headers["location"]) == (303, "/account?done=password_changed")
    assert await session_of(token, client) == 200
    assert await session_of(other_token, client) == 401
    await login(client, EMAIL, NEW_PASSWORD)


# --- password reset and email verification -----------------------------------------------------------------


async def mailed_token(app: FastAPI, mail_dir: Path) -> str:
    await app.state.services.accounts.background.drain()
    await app.state.services.outbox.drain()
    (mail,) = mail_dir.glob("*.eml")
    return link_token(message_from_bytes(mail.read_bytes(), policy=policy.default))  # type: ignore[arg-type]


async def test_resetting_a_password_through_the_pages(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, mail_dir=tmp_path / "mail")
    async with running(settings, base_url=ORIGIN) as (app, browser):
        await register(browser)
        token = await form_login(browser)
        asked = await browser.post("/password/reset/request/form", data={"email": EMAIL}, headers=SAME_SITE)
        assert asked.headers["location"] == "/password/reset?done=reset_sent"
        assert (
            "a link to set a new password is on its way"
            in (await browser.get(asked.headers["location"])).text
        )
        nobody = await browser.post(
            "/password/reset/request/form", data={"email": "x@example.com"}, headers=SAME_SITE
        )
        assert nobody.headers["location"] == asked.headers["location"]

        reset_token = await mailed_token(app, tmp_path / "mail")
        page = await browser.get("/password/reset", params={"token": reset_token})
        assert page.status_code == 200 and f'value="{reset_token}"' in page.text
        weak = await browser.post(
            "/password/reset/confirm/form",
            data={"token": reset_token, "new_password": "short"},
            headers=SAME_SITE,
        )
        assert weak.status_code == 400 and "Password must be at least 15 characters" in weak.text
        done = await browser.post(
            "/password/reset/confirm/form",
            data={"token": reset_token, "new_password": NEW_PASSWORD},
            headers=SAME_SITE,
        )
        assert (done.status_code, done.headers["location"]) == (303, "/login?done=password_reset")
        assert "Max-Age=0" in done.headers["set-cookie"]
        assert await session_of(token, browser) == 401
        await login(browser, EMAIL, NEW_PASSWORD)

        used = await browser.post(
            "/password/reset/confirm/form",
            data={"token": reset_token, "new_password": NEW_PASSWORD},
            headers=SAME_SITE,
        )
        assert used.status_code == 400 and "Ask for a new link" in used.text


async def test_confirming_an_email_address_through_the_pages(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, mail_dir=tmp_path / "mail", require_email_verification=True)
    async with running(settings, base_url=ORIGIN) as (app, browser):
        created = await browser.post(
            "/register/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
        )
        assert created.headers["location"] == "/login?done=verify"
        await app.state.services.accounts.background.drain()  # the account is created after the answer
        early = await browser.post(
            "/login/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
        )
        assert early.status_code == 403 and "Email address not verified" in early.text

        token = await mailed_token(app, tmp_path / "mail")
        page = await browser.get("/email/verify", params={"token": token})
        assert page.status_code == 200 and "Confirm my address" in page.text
        confirmed = await browser.post("/email/verify/form", data={"token": token}, headers=SAME_SITE)
        assert confirmed.headers["location"] == "/login?done=verified"
        await form_login(browser)
        used = await browser.post("/email/verify/form", data={"token": token}, headers=SAME_SITE)
        assert used.status_code == 400 and "Ask for a new link" in used.text

        resend = await browser.post("/email/verify/resend/form", data={"email": EMAIL}, headers=SAME_SITE)
        assert resend.headers["location"] == "/email/verify?done=verify_sent"
        assert "a new link is on its way" in (await browser.get(resend.headers["location"])).text
        empty = await browser.post("/email/verify/resend/form", data={"email": ""}, headers=SAME_SITE)
        assert empty.status_code == 400
        assert re.search(r'id="email"[^>]*aria-invalid="true"', empty.text)


@pytest.mark.parametrize("path", ["/password/reset", "/email/verify"])
async def test_malformed_links_say_so(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, params={"token": "<b>nope</b>"})
    assert response.status_code == 400
    assert "This link is not valid" in response.text
    assert "<b>nope" not in response.text


# --- small parts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Login.Example.com/", "https://login.example.com"),
        ("https://login.example.com:443", "https://login.example.com"),
        ("http://127.0.0.1:8000/account?x=1", "http://127.0.0.1:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("ftp://example.com", None),
        ("http://example.com:99999", None),
        ("https://", None),
    ],
)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (None, "Unknown device"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
            "Firefox on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28.1", "python-httpx/0.28.1"),
        ("x" * 100, "x" * 59 + "…"),
    ],
)
def test_describe_device(user_agent: str | None, device: str) -> None:
    assert describe_device(user_agent) == device
