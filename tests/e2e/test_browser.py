"""The pages in a real browser: Debian's Chromium, driven by Playwright, against ``doorward serve``.

Set DOORWARD_SCREENSHOTS=1 to (re)write the screenshots in docs/.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import COOKIE, SCREENSHOTS, Watched, log_in, shoot
from tests.servers import Server, launch

pytestmark = pytest.mark.e2e

EMAIL = "grace@example.com"
"""The account the registration test makes with JavaScript on (the one in the screenshots)."""
NO_JS_EMAIL = "grace.no-js@example.com"
LOGGED_IN_EMAIL = "grace.logged-in@example.com"
"""The accounts of the run without JavaScript and of the logged_in fixture: the server is the module's."""
PASSWORD = "a long and unusual passphrase"
COMMON = "passwordpassword1"  # long enough, and refused: "password" twice, plus a digit
JSON_END_OTHER_SESSION = """async (withToken) => {
    const listed = await (await fetch("/sessions")).json();
    const other = listed.sessions.find((session) => !session.current);
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const headers = withToken ? {"X-CSRF-Token": token} : {};
    const answer = await fetch(`/sessions/${other.id}`, {method: "DELETE", headers});
    return [answer.status, await answer.json()];
}"""


def open_account(page: Page, base_url: str, email: str) -> Page:
    """Log ``page`` in to the test account and see it land on the account page."""
    log_in(page, base_url, email, PASSWORD)
    expect(page).to_have_url(f"{base_url}/account")
    return page


@dataclass
class LoggedIn:
    """A browser logged in to a fresh ``doorward serve``."""

    server: Server
    context: BrowserContext
    page: Page

    @property
    def base(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: each test registers an account of its own and ends only its sessions."""
    started = launch(tmp_path_factory.mktemp("browser"), 0)
    yield started
    started.stop()


@pytest.fixture
def logged_in(chromium: Browser, server: Server) -> Iterator[LoggedIn]:
    """The module's server, the test account registered through the form, and a page logged in to it."""
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{server.base_url}/register")
    page.get_by_label("Email").fill(LOGGED_IN_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{server.base_url}/login?done=registered")
    open_account(page, server.base_url, LOGGED_IN_EMAIL)
    yield LoggedIn(server, context, page)
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_register_log_in_see_and_end_sessions_log_out(
    chromium: Browser, server: Server, javascript: bool
) -> None:
    base = server.base_url
    email = EMAIL if javascript else NO_JS_EMAIL
    laptop = chromium.new_context(java_script_enabled=javascript, viewport={"width": 900, "height": 900})
    phone = chromium.new_context(java_script_enabled=javascript, viewport={"width": 390, "height": 844})
    watched = Watched(laptop)
    page = watched.page

    # Registration: the script catches a short password before sending; the server refuses a common one.
    page.goto(f"{base}/register")
    page.get_by_label("Email").fill(email)
    if javascript:
        page.get_by_label("Password").fill("too short")
        page.get_by_role("button", name="Create account").click()
        expect(page.locator("#password-error")).to_have_text("Password must be at least 15 characters")
        expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
        assert page.url == f"{base}/register"  # nothing was sent
        page.get_by_label("Password").fill(f"{email} forever and ever")
        page.get_by_role("button", name="Create account").click()
        expect(page.locator("#password-error")).to_contain_text("must not contain your email address")
    page.get_by_label("Password").fill(COMMON)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#password-error")).to_contain_text("This password is too common")
    assert page.url == f"{base}/register/form"
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/login?done=registered")
    expect(page.get_by_role("status")).to_have_text("Your account is ready. Log in to continue.")

    # A wrong password: the one generic message, announced.
    log_in(page, base, email, "not the right passphrase at all")
    expect(page.get_by_role("alert")).to_have_text("Invalid credentials")
    expect(page.get_by_label("Email")).to_have_value(email)

    # Keyboard-only login into the account page; the cookie is HttpOnly, Secure, SameSite=Lax, host-only.
    log_in(page, base, email, PASSWORD)
    expect(page).to_have_url(f"{base}/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_text(f"Logged in as {email}.")).to_be_visible()
    (cookie,) = [c for c in laptop.cookies() if c["name"] == COOKIE]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert (cookie["domain"], cookie["path"]) == ("127.0.0.1", "/")
    assert cookie["value"] not in page.content()
    if javascript:
        assert page.evaluate("window.isSecureContext") is True  # http://127.0.0.1 counts as secure
        assert COOKIE not in page.evaluate("document.cookie")
    sessions = page.locator("ul.sessions > li")
    expect(sessions).to_have_count(1)
    expect(sessions.first).to_contain_text("this browser")

    # A second login from another browser shows up, and is ended from here.
    other = open_account(phone.new_page(), base, email)
    page.reload()
    expect(sessions).to_have_count(2)
    shoot(page, "screenshot-account.png", javascript)
    end = page.get_by_role("button", name="End session:")
    expect(end).to_have_count(1)
    end.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("That session has ended.")
    expect(sessions).to_have_count(1)
    other.goto(f"{base}/account")
    expect(other).to_have_url(f"{base}/login")

    if javascript:
        # A script on the page may use the session through the JSON API only with the page's CSRF token.
        tablet = open_account(phone.new_page(), base, email)
        status = page.evaluate(JSON_END_OTHER_SESSION, False)
        assert status == [403, {"success": False, "error": "Cross-site request refused", "code": "csrf"}]
        status = page.evaluate(JSON_END_OTHER_SESSION, True)
        assert status == [200, {"success": True}]
        tablet.goto(f"{base}/account")
        expect(tablet).to_have_url(f"{base}/login")

    # Log out: back to the login page, the cookie gone, the account page closed.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/login?done=logged_out")
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    assert not [c for c in laptop.cookies() if c["name"] == COOKIE]
    page.goto(f"{base}/account")
    expect(page).to_have_url(f"{base}/login")
    shoot(page, "screenshot-login.png", javascript)

    if SCREENSHOTS and javascript:
        shoot(open_account(phone.new_page(), base, email), "screenshot-account-phone.png")

    assert not watched.problems, watched.problems
    laptop.close()
    phone.close()


class _Attacker(BaseHTTPRequestHandler):
    """Serves one page that, once loaded, posts a form to doorward's logout."""

    target = ""

    def do_GET(self) -> None:
        body = (
            "<!doctype html><title>Win a prize</title>"
            f'<form id="f" method="post" action="{self.target}/logout/form">'
            '<input type="hidden" name="csrf_token" value="guessed"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker_site() -> Iterator[Callable[[str], str]]:
    """Starts a page on http://127.0.0.1:<another port> aiming at a target; returns its address.

    Another port of the same host is another origin but the same site, so SameSite=Lax does not
    stop the browser from sending the cookie: only doorward's own check stands in the way.
    """
    servers: list[ThreadingHTTPServer] = []

    def start(target: str) -> str:
        handler = type("Attacker", (_Attacker,), {"target": target})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_a_cross_site_form_post_is_refused_and_the_session_survives(
    logged_in: LoggedIn, attacker_site: Callable[[str], str]
) -> None:
    base, page = logged_in.base, logged_in.page
    logged_before = len(logged_in.server.stderr())  # the server is the module's: only what follows
    victim = logged_in.context.new_page()
    with victim.expect_navigation(url=f"{base}/logout/form") as navigation:
        victim.goto(attacker_site(base))
    response = navigation.value
    assert response is not None and response.status == 403
    expect(victim.get_by_role("heading", name="Request refused")).to_be_visible()
    expect(victim.get_by_role("alert")).to_have_text("Cross-site request refused")

    page.goto(f"{base}/account")
    expect(page).to_have_url(f"{base}/account")  # still logged in
    expect(page.locator("ul.sessions > li")).to_have_count(1)
    assert [c for c in logged_in.context.cookies() if c["name"] == COOKIE]
    log = logged_in.server.stderr()[logged_before:]
    assert "csrf.refused" in log, log
