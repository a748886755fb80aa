"""Two-step verification in a real browser (Chromium, Playwright) against ``doorward serve``, with
JavaScript on and off: set it up from the QR code page, then log in through the second step with a code
from the app and with a recovery code.

Set DOORWARD_SCREENSHOTS=1 to (re)write docs/screenshot-mfa-setup.png and docs/screenshot-mfa-code.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.e2e.browser import COOKIE, Watched, log_in, shoot
from tests.servers import Server, launch

pytestmark = pytest.mark.e2e

EMAIL = "hedy@example.com"
"""The account of the run with JavaScript (the one in the screenshots)."""
NO_JS_EMAIL = "hedy.no-js@example.com"
"""The account of the run without: the server is the module's."""
PASSWORD = "frequency hopping since 1942"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: each run sets up two-step verification on an account of its own."""
    started = launch(tmp_path_factory.mktemp("mfa"), 0)
    yield started
    started.stop()


def register(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/login?done=registered")


def log_out(page: Page, base: str) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/login?done=logged_out")


def second_step(page: Page, base: str, email: str) -> None:
    """The password, and the page that asks for the code, its field ready to type in."""
    log_in(page, base, email, PASSWORD)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    code = page.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    expect(code).to_have_attribute("inputmode", "numeric")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_set_up_from_the_qr_code_then_log_in_with_a_code_and_with_a_recovery_code(
    chromium: Browser, server: Server, javascript: bool
) -> None:
    base = server.base_url
    email = EMAIL if javascript else NO_JS_EMAIL
    context = chromium.new_context(
        java_script_enabled=javascript, viewport={"width": 900, "height": 900}, accept_downloads=True
    )
    watched = Watched(context)
    page = watched.page
    addresses: list[str] = []

    def record(request: Request) -> None:
        addresses.append(request.url)

    page.on("request", record)

    register(page, base, email)
    log_in(page, base, email, PASSWORD)
    expect(page).to_have_url(f"{base}/account")  # the password alone, until the set-up is done

    # Set up: the password, then the QR code (inline SVG) with the key beside it.
    section = page.get_by_role("region", name="Two-step verification")
    expect(section).to_contain_text("Off")
    page.locator("#mfa_password").fill(PASSWORD)
    page.get_by_role("button", name="Set up").click()
    expect(page.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 150 and box["width"] == box["height"]
    secret = page.locator("#secret").inner_text().replace(" ", "")
    assert len(secret) == 32
    expect(page.get_by_label("Code from your authenticator app")).to_be_focused()
    shoot(page, "screenshot-mfa-setup.png", javascript)

    # The first code turns it on and answers the recovery codes, shown this once, to download.
    page.keyboard.type(pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Two-step verification is on.")
    codes = page.locator("ul.codes code").all_inner_texts()
    assert len(codes) == 10
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as .txt").click()
    assert download.value.suggested_filename == "doorward-recovery-codes.txt"
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    assert saved.splitlines()[-10:] == codes
    page.get_by_role("link", name="I have saved them, continue").click()
    expect(page).to_have_url(f"{base}/account?done=mfa_on")
    expect(section).to_contain_text("Recovery codes left: 10")
    log_out(page, base)

    # The password is no longer enough: the second step, a wrong code, then the app's code.
    second_step(page, base, email)
    expect(page).to_have_url(f"{base}/login/form")
    mfa_token = page.locator('input[name="mfa_token"]').first.input_value()
    assert len(mfa_token) == 43
    assert not [c for c in context.cookies() if c["name"] == COOKIE]
    shoot(page, "screenshot-mfa-code.png", javascript)
    # The confirmation used up the code of its 30-second step; the window takes the next step's.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    page.keyboard.type(f"{(int(code) + 1) % 1_000_000:06d}")
    page.keyboard.press("Enter")
    expect(page.locator("#code-error")).to_have_text("Invalid code")
    expect(page.get_by_label("Code from your authenticator app")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page).to_have_url(f"{base}/account")
    assert [c for c in context.cookies() if c["name"] == COOKIE]
    log_out(page, base)

    # Once more with a recovery code, behind the toggle (a <details>: no script needed).
    second_step(page, base, email)
    recovery = page.get_by_label("Recovery code")
    expect(recovery).to_be_hidden()
    page.get_by_text("Use a recovery code instead").click()
    recovery.fill(codes[0])
    page.get_by_role("button", name="Use recovery code").click()
    expect(page).to_have_url(f"{base}/account")
    expect(section).to_contain_text("Recovery codes left: 9")

    assert not watched.problems, watched.problems
    told = [*addresses, server.stderr()]
    for value in (secret, mfa_token, *codes):
        assert not [text for text in told if value in text], value
    context.close()
