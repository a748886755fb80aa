"""A real SMTP server for tests (aiosmtpd), and how to read links out of what it received."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller

from tests.servers import free_port


class Inbox:
    """What the server received, as parsed messages."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw: bytes = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.messages.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def wait_for(self, to: str, subject: str, timeout: float = 10.0) -> EmailMessage:
        """The first message to ``to`` whose subject contains ``subject``, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if message["To"] == to and subject in message["Subject"]:
                    return message
            time.sleep(0.02)
        raise AssertionError(
            f"no mail to {to} about {subject!r}; got {[m['Subject'] for m in self.messages]}"
        )


def link_token(message: EmailMessage) -> str:
    """The ``token`` of the link in the plain-text part."""
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    link = next(word for word in text.split() if word.startswith("http"))
    return parse_qs(urlparse(link).query)["token"][0]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()
