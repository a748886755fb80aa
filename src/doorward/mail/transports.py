"""How a rendered mail leaves: written to a directory (development) or sent over SMTP."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

_log = logging.getLogger("doorward.mail")


class Transport(Protocol):
    """Delivers one message or raises."""

    async def deliver(self, message: EmailMessage) -> None:
        """Send ``message``; an exception means "try again later"."""


class FileTransport:
    """Writes each message as an .eml file: open it in any mail client, or read the link with grep."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def deliver(self, message: EmailMessage) -> None:
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
        path = self._directory / name
        await asyncio.to_thread(self._write, path, message.as_bytes())
        # Where, to whom and what about; never the body, which holds the link's token.
        _log.info(
            "mail written", extra={"path": str(path), "to": message["To"], "subject": message["Subject"]}
        )

    def _write(self, path: Path, data: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def last_mail(directory: Path, to: str | None = None) -> EmailMessage | None:
    """The newest mail ``FileTransport`` wrote into ``directory`` (to ``to``, in any case, if given)."""
    # Named by the time of writing, so the names sort as the mails were written.
    for path in sorted(directory.glob("*.eml"), reverse=True) if directory.is_dir() else ():
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)  # what policy.default makes
        if to is None or str(message["To"]).strip().casefold() == to.strip().casefold():
            return message
    return None


def plain_text(message: EmailMessage) -> str:
    """A mail's plain-text part, decoded: links whole, where the file holds them quoted-printable."""
    body = message.get_body(preferencelist=("plain",))
    return "" if body is None else str(body.get_content())


class SmtpTransport:
    """Sends through an SMTP server (STARTTLS on 587 by default, implicit TLS on 465)."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._username = username
        self._password = password
        self._timeout = timeout

    async def deliver(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            recipients=[str(message["To"])],  # the stored address itself, not a parse of the header
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls",
            timeout=self._timeout,
        )
        _log.info("mail sent", extra={"to": message["To"], "subject": message["Subject"]})
