"""The outbox: rendering, escaping, and retrying a delivery that fails."""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage

import pytest

from doorward.mail import MailOutbox


class FlakyTransport:
    """Fails ``failures`` times, then delivers into ``delivered``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[EmailMessage] = []

    async def deliver(self, message: EmailMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("smtp down")
        self.delivered.append(message)


async def run_outbox(outbox: MailOutbox) -> None:
    import asyncio

    worker = asyncio.create_task(outbox.run())
    await outbox.drain()
    worker.cancel()


async def test_a_failed_delivery_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    transport = FlakyTransport(failures=2)
    outbox = MailOutbox(
        transport, sender="doorward <d@example.com>", public_url="https://id.example.com/", first_pause=0.01
    )
    outbox.password_reset("ada@example.com", "TOKEN-123")
    await run_outbox(outbox)
    assert len(transport.delivered) == 1
    message = transport.delivered[0]
    assert message["To"] == "ada@example.com"
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "https://id.example.com/password/reset?token=TOKEN-123" in text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "mail delivery failed"
    ] * 2
    assert "TOKEN-123" not in caplog.text


async def test_after_the_last_attempt_the_mail_is_given_up(caplog: pytest.LogCaptureFixture) -> None:
    transport = FlakyTransport(failures=10)
    outbox = MailOutbox(
        transport, sender="d@example.com", public_url="https://x", attempts=3, first_pause=0.01
    )
    outbox.password_changed("ada@example.com")
    await run_outbox(outbox)
    assert transport.delivered == []
    assert "mail given up" in caplog.text


def test_html_bodies_escape_what_they_show() -> None:
    outbox = MailOutbox(FlakyTransport(0), sender="d@example.com", public_url="https://x")
    mail = outbox.render(
        "registration_attempt", '<script>alert(1)</script>"@example.com', reset_link="https://x/r"
    )
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html
    named = outbox.render(  # a passkey's name is the user's own text
        "passkey_added", "a@example.com", name="<b>key</b>", when="now", reset_link="https://x/r"
    )
    assert "<b>" not in named.html
    assert "&lt;b&gt;key&lt;/b&gt;" in named.html


@pytest.mark.parametrize(
    ("kind", "args", "says"),
    [
        ("totp_enabled", (), "Two-step verification was turned on"),
        ("totp_disabled", (), "Two-step verification was turned off"),
        ("recovery_codes_regenerated", (), "A new set of recovery codes was made"),
        ("recovery_code_used", (9,), "9 codes left"),
        ("recovery_code_used", (1,), "1 code left. Make a new set"),
        ("mfa_reset", (), "An administrator removed two-step verification"),
        ("passkey_added", ("Phone",), 'A passkey named "Phone" was added'),
        ("passkey_removed", ("Phone",), 'The passkey named "Phone" was removed'),
        ("passkey_cloned", ("Phone",), "may have been copied"),
    ],
)
async def test_each_second_factor_mail_says_what_when_and_what_to_do(
    kind: str, args: tuple[object, ...], says: str
) -> None:
    from datetime import UTC, datetime

    transport = FlakyTransport(0)
    outbox = MailOutbox(
        transport,
        sender="d@example.com",
        public_url="https://id.example.com",
        clock=lambda: datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
    )
    getattr(outbox, kind)("ada@example.com", *args)
    await run_outbox(outbox)
    (message,) = transport.delivered
    assert message["Subject"]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    for body in (" ".join(text.split()), " ".join(re.sub(r"<[^>]+>", "", html).split())):
        assert says in body.replace("&ldquo;", '"').replace("&rdquo;", '"')
        assert "on 2026-03-04 05:06 UTC" in body
        assert "administrator" in body
    assert "https://id.example.com/password/reset" in text  # what to do if it was not you
    assert 'href="https://id.example.com/password/reset"' in html
