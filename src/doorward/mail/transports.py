"""How a rendered mail leaves: written to a directory (development) or sent over SMTP."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
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
