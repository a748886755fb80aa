"""What every mail says of itself: when it was sent (Date) and a Message-ID in doorward's own domain."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from doorward.mail import MailOutbox

SENT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


class Collector:
    def __init__(self) -> None:
        self.delivered: list[EmailMessage] = []

    async def deliver(self, message: EmailMessage) -> None:
        self.delivered.append(message)


async def one_mail(public_url: str, sender: str) -> EmailMessage:
    transport = Collector()
    outbox = MailOutbox(transport, sender=sender, public_url=public_url, clock=lambda: SENT)
    outbox.password_changed("ada@example.com")
    worker = asyncio.create_task(outbox.run())
    await outbox.drain()
    worker.cancel()
    (message,) = transport.delivered
    return message


async def test_a_mail_says_when_it_was_sent() -> None:
    message = await one_mail("https://id.example.com", "doorward <no-reply@example.com>")
    assert parsedate_to_datetime(message["Date"]) == SENT
    assert message["Date"] == "Wed, 04 Mar 2026 05:06:07 +0000"


@pytest.mark.parametrize(
    ("public_url", "sender", "domain"),
    [
        ("https://id.example.com", "doorward <no-reply@mail.example.org>", "id.example.com"),
        ("https://ID.Example.com:8443/", "no-reply@example.org", "id.example.com"),
        ("http://127.0.0.1:8000", "doorward <no-reply@example.org>", "example.org"),  # no name: the sender's
        ("http://[::1]:8000", "no-reply@example.org", "example.org"),
        ("http://127.0.0.1:8000", "doorward <no-reply@localhost>", "localhost"),
    ],
)
async def test_the_message_id_is_in_doorwards_domain(public_url: str, sender: str, domain: str) -> None:
    message = await one_mail(public_url, sender)
    left, _, right = message["Message-ID"].strip("<>").partition("@")
    assert (bool(left), right) == (True, domain)
