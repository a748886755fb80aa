"""What the browser tests share: where Chromium is, a page watched for CSP violations, logging in from
the keyboard, and the screenshots for docs/ (set DOORWARD_SCREENSHOTS=1 to rewrite them)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = os.environ.get("DOORWARD_SCREENSHOTS") == "1"
COOKIE = "__Host-doorward_session"


class Watched:
    """A page whose console is watched for Content-Security-Policy violations and script errors."""

    def __init__(self, context: BrowserContext) -> None:
        self.page: Page = context.new_page()
        self.page.set_default_timeout(10_000)
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(message.text)


def log_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Log in with the keyboard only: the email field has focus when the page opens."""
    page.goto(f"{base_url}/login")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def shoot(page: Page, name: str, javascript: bool = True) -> None:
    """A screenshot of the whole page into docs/, when asked for (and only of the run with JavaScript)."""
    if SCREENSHOTS and javascript:
        page.screenshot(path=str(DOCS / name), full_page=True)
