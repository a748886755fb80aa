"""Passkeys in a real browser (Chromium, Playwright) against ``doorward serve``, with the DevTools
virtual authenticator (CTAP2, internal, resident keys, user verification): through the pages, add a
passkey, sign in with it alone, then use it as the second step after the password, then remove it;
and through the JSON API from the page's origin, driving navigator.credentials with the contract's
JSON. Served on ``localhost``: an IP address is no relying party ID.

Set DOORWARD_SCREENSHOTS=1 to (re)write docs/screenshot-passkey-login.png and
docs/screenshot-passkey-account.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, expect

from tests.e2e.browser import DOCS, SCREENSHOTS, Watched
from tests.servers import free_port, launch

pytestmark = pytest.mark.e2e

EMAIL = "grace@example.com"
"""The account of the test through the pages (the one in the screenshots); the others make their own,
named after the test: the server is the module's."""
PASSWORD = "nanoseconds are eleven inches"


def virtual_authenticator(context: BrowserContext, page: Page) -> tuple[CDPSession, str]:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


NO_AUTOFILL = "PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);"
"""Chrome's virtual authenticator answers a conditional (autofill) request at once, where a person
would pick the passkey from the email field's suggestions: tests of the button turn autofill off."""


def add_passkey(page: Page, base: str, name: str) -> None:
    page.locator("#passkey_password").fill(PASSWORD)
    page.locator("#passkey_name").fill(name)
    page.get_by_role("region", name="Passkeys").get_by_role("button", name="Add a passkey").click()
    expect(page).to_have_url(f"{base}/account?done=passkey_added")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module, on ``localhost``; each test registers an account of its own, and each
    test's virtual authenticator holds only that account's passkeys."""
    port = free_port()
    address = f"http://localhost:{port}"
    server = launch(tmp_path_factory.mktemp("passkeys"), 0, port=port, public_url=address)
    yield address
    server.stop()


def register_and_log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/login?done=registered")
    password_login(page, base, email)


def password_login(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()


def log_out(page: Page, base: str) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/login?done=logged_out")


def session(page: Page) -> dict[str, Any]:
    """GET /session with the page's cookie."""
    return dict(page.evaluate("fetch('/session').then(r => r.json()).then(b => b.session)"))


def test_add_sign_in_second_step_and_remove_through_the_pages(chromium: Browser, base: str) -> None:
    context = chromium.new_context(viewport={"width": 900, "height": 900})
    context.add_init_script(NO_AUTOFILL)
    watched = Watched(context)
    page = watched.page
    cdp, authenticator = virtual_authenticator(context, page)

    register_and_log_in(page, base, EMAIL)
    expect(page).to_have_url(f"{base}/account")
    section = page.get_by_role("region", name="Passkeys")
    add_passkey(page, base, "Laptop")
    expect(section).to_contain_text("Laptop")
    expect(section).to_contain_text("Not used yet")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]
    if SCREENSHOTS:
        section.screenshot(path=str(DOCS / "screenshot-passkey-account.png"))

    # A passkey alone: both factors at once (the virtual authenticator verifies its user).
    log_out(page, base)
    expect(page.get_by_label("Email")).to_have_attribute("autocomplete", "username webauthn")
    button = page.get_by_role("button", name="Sign in with a passkey")
    expect(button).to_be_visible()
    if SCREENSHOTS:
        page.locator("main").screenshot(path=str(DOCS / "screenshot-passkey-login.png"))
    button.click()
    expect(page).to_have_url(f"{base}/account")
    assert (session(page)["aal"], session(page)["amr"]) == (2, ["hwk", "user"])
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["__Host-doorward_session"]["httpOnly"]

    # The password, then the passkey as the second step.
    log_out(page, base)
    password_login(page, base, EMAIL)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    expect(page.get_by_label("Code from your authenticator app")).to_have_count(0)  # no app
    page.get_by_role("button", name="Use your passkey").click()
    expect(page).to_have_url(f"{base}/account")
    assert (session(page)["aal"], session(page)["amr"]) == (2, ["pwd", "hwk"])

    # Rename, then remove with the password.
    section.locator("summary").click()
    section.get_by_label("New name").fill("Work laptop")
    section.get_by_role("button", name="Rename").click()
    expect(page).to_have_url(f"{base}/account?done=passkey_renamed")
    expect(section).to_contain_text("Work laptop")
    section.locator("summary").click()
    section.get_by_label("Current password").first.fill(PASSWORD)
    section.get_by_role("button", name="Remove passkey").click()
    expect(page).to_have_url(f"{base}/account?done=passkey_removed")
    expect(section).not_to_contain_text("Work laptop")

    # The authenticator still holds it, but it signs in no more.
    log_out(page, base)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert").first).to_contain_text("Invalid credentials")
    expect(page).to_have_url(f"{base}/login/passkey/form")
    assert watched.problems == []
    context.close()


JSON_API = """async (password) => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const headers = {"Content-Type": "application/json", "X-CSRF-Token": csrf};
  const post = (path, body, extra) => fetch(path, {method: "POST", headers: extra || headers,
      body: body === undefined ? undefined : JSON.stringify(body)});
  let response = await post("/passkeys/options", {password});
  const creation = (await response.json()).options;
  const made = await navigator.credentials.create(
      {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(creation)});
  response = await post("/passkeys", {credential: made.toJSON(), name: "From the API"});
  const added = [response.status, await response.json()];
  response = await post("/login/passkey/options", undefined, {});
  const request = (await response.json()).options;
  const used = await navigator.credentials.get(
      {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(request)});
  response = await post("/login/passkey", {credential: used.toJSON()}, {"Content-Type": "application/json"});
  const login = [response.status, await response.json()];
  const replay = await post("/login/passkey", {credential: used.toJSON()},
      {"Content-Type": "application/json"});
  response = await fetch("/session", {headers: {Authorization: "Bearer " + login[1].sessionToken}});
  return {added, login: [login[0], Object.keys(login[1])], replay: [replay.status, await replay.text()],
          session: (await response.json()).session, request, cookie: document.cookie};
}"""


def test_the_json_api_from_the_pages_origin(chromium: Browser, base: str) -> None:
    context = chromium.new_context()
    watched = Watched(context)
    page = watched.page
    virtual_authenticator(context, page)
    register_and_log_in(page, base, "grace.api@example.com")
    expect(page).to_have_url(f"{base}/account")

    result = page.evaluate(JSON_API, PASSWORD)

    status, body = result["added"]
    assert status == 201 and list(body["passkey"]) == ["id", "name", "createdAt", "lastUsedAt"]
    assert body["passkey"]["name"] == "From the API"
    assert result["login"] == [200, ["success", "sessionToken", "user"]]
    assert result["replay"] == [401, '{"success":false,"error":"Invalid credentials"}']
    assert (result["session"]["aal"], result["session"]["amr"]) == (2, ["hwk", "user"])
    assert result["request"]["allowCredentials"] == []
    assert result["cookie"] == ""  # the session cookie is HttpOnly: no script reads it
    assert watched.problems == []
    context.close()


def test_the_email_fields_autofill_offers_the_passkey(chromium: Browser, base: str) -> None:
    """Conditional mediation: the login page asks for a passkey as it opens, for the email field's
    suggestions; here the virtual authenticator picks it at once, and the page signs in."""
    context = chromium.new_context()
    watched = Watched(context)
    page = watched.page
    virtual_authenticator(context, page)
    register_and_log_in(page, base, "grace.autofill@example.com")
    add_passkey(page, base, "Phone")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/account")  # via the login page, signed in by the autofill's answer
    assert (session(page)["aal"], session(page)["amr"]) == (2, ["hwk", "user"])
    assert watched.problems == []
    context.close()


def test_without_javascript_no_passkey_button_shows_and_the_password_works(
    chromium: Browser, base: str
) -> None:
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/login")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
    register_and_log_in(page, base, "grace.no-js@example.com")
    expect(page).to_have_url(f"{base}/account")
    expect(page.get_by_role("button", name="Add a passkey")).to_be_hidden()
    context.close()
