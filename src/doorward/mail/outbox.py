"""The outbox: renders the core's notifications and delivers them in the background, with retries."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from doorward.core.clock import Clock, utc_now
from doorward.core.models import Sighting
from doorward.mail.transports import Transport

_log = logging.getLogger("doorward.mail")

SUBJECTS = {
    "password_reset": "Reset your password",
    "password_changed": "Your password was changed",
    "password_breached": "Your password appears in a data breach: change it",
    "password_reset_used": "Your password was reset",
    "verify_email": "Confirm your email address",
    "registration_attempt": "Someone tried to register with your address",
    "totp_enabled": "Two-step verification is on",
    "totp_disabled": "Two-step verification was turned off",
    "recovery_codes_regenerated": "New recovery codes were made",
    "recovery_code_used": "A recovery code was used to log in",
    "mfa_reset": "Two-step verification was reset by an administrator",
    "passkey_added": "A passkey was added to your account",
    "passkey_removed": "A passkey was removed from your account",
    "passkey_cloned": "A sign-in with a possibly copied passkey was refused",
    "email_change_confirm": "Confirm your new email address",
    "email_change_notice": "Your email address is being changed",
    "account_deleted": "Your account was deleted",
    "login_backoff": "Repeated failed logins to your account",
    "account_locked": "Your account was locked after failed logins",
    "new_device": "A login to your account from a new device",
}


@dataclass(frozen=True)
class Mail:
    """A rendered mail: plain text and HTML of the same content."""

    to: str
    subject: str
    text: str
    html: str
    date: datetime
    """When it was written (queued): its ``Date:``, however many tries the delivery takes."""

    def message(self, sender: str, *, domain: str = "localhost") -> EmailMessage:
        """The mail as sent from ``sender``, its ``Message-ID`` in ``domain`` (``message_id_domain``)."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = format_datetime(self.date.astimezone(UTC))
        message["Message-ID"] = make_msgid(domain=domain)
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


def message_id_domain(public_url: str, sender: str) -> str:
    """The domain of doorward's Message-IDs: its public URL's host, when that is a name; else the
    sender's domain (``localhost`` if it has none). A bare ``@doorward`` marks a mail as made up to spam
    filters, and a Message-ID with an address in it, though allowed, is rare enough to look so too."""
    host = urlsplit(public_url).hostname
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return host
    return parseaddr(sender)[1].rpartition("@")[2].lower() or "localhost"


class MailOutbox:
    """Implements the core's Notifications: every call returns at once; a worker delivers.

    A delivery that fails is retried with growing pauses (1, 2, 4 ... s); after the last try the
    mail is given up with an error in the log. The client's answer never depends on any of it.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        sender: str,
        public_url: str,
        attempts: int = 5,
        first_pause: float = 1.0,
        capacity: int = 1000,
        reset_minutes: int = 30,
        link_hours: int = 24,
        clock: Clock = utc_now,
    ) -> None:
        self._reset_minutes = reset_minutes
        self._link_hours = link_hours
        self._clock = clock
        self._transport = transport
        self._sender = sender
        self._public_url = public_url.rstrip("/")
        self._domain = message_id_domain(public_url, sender)
        self._attempts = attempts
        self._first_pause = first_pause
        self._queue: asyncio.Queue[Mail] = asyncio.Queue(maxsize=capacity)
        self._templates = Environment(
            loader=PackageLoader("doorward.mail", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=True,
        )

    # --- the core's Notifications ---------------------------------------------------------------

    def password_reset(self, to: str, token: str) -> None:
        self._enqueue(
            "password_reset", to, link=self._link("/password/reset", token), minutes=self._reset_minutes
        )

    def password_changed(self, to: str, seen: Sighting | None = None) -> None:
        self._enqueue_change("password_changed", to, seen)

    def password_reset_used(self, to: str, seen: Sighting) -> None:
        self._enqueue_seen("password_reset_used", to, seen)

    def password_breached(self, to: str) -> None:
        self._enqueue("password_breached", to, change_link=f"{self._public_url}/account")

    def verify_email(self, to: str, token: str) -> None:
        self._enqueue("verify_email", to, link=self._link("/email/verify", token))

    def registration_attempt(self, to: str) -> None:
        self._enqueue("registration_attempt", to, reset_link=f"{self._public_url}/password/reset")

    # Changes to a second factor: each mail says what happened and when, and what to do if it was
    # not the user (reset the password; without the second factor, ask the administrator).

    def totp_enabled(self, to: str, seen: Sighting | None = None) -> None:
        self._enqueue_change("totp_enabled", to, seen)

    def totp_disabled(self, to: str, seen: Sighting | None = None) -> None:
        self._enqueue_change("totp_disabled", to, seen)

    def recovery_codes_regenerated(self, to: str, seen: Sighting | None = None) -> None:
        self._enqueue_change("recovery_codes_regenerated", to, seen)

    def recovery_code_used(self, to: str, left: int, seen: Sighting | None = None) -> None:
        self._enqueue_change("recovery_code_used", to, seen, left=left)

    def mfa_reset(self, to: str) -> None:
        self._enqueue_change("mfa_reset", to)

    def passkey_added(self, to: str, name: str, seen: Sighting | None = None) -> None:
        self._enqueue_change("passkey_added", to, seen, name=name)

    def passkey_removed(self, to: str, name: str, seen: Sighting | None = None) -> None:
        self._enqueue_change("passkey_removed", to, seen, name=name)

    def passkey_cloned(self, to: str, name: str, seen: Sighting | None = None) -> None:
        self._enqueue_change("passkey_cloned", to, seen, name=name)

    # An email change (issue 23): the link to the new address, the "this wasn't me" to the old one.

    def email_change_confirm(self, to: str, token: str) -> None:
        link = self._link("/email/change/confirm", token)
        self._enqueue("email_change_confirm", to, link=link, hours=self._link_hours)

    def email_change_notice(self, to: str, token: str) -> None:
        link = self._link("/email/change/revert", token)
        self._enqueue_change("email_change_notice", to, link=link, hours=self._link_hours)

    def account_deleted(self, to: str) -> None:
        self._enqueue_change("account_deleted", to)

    # What happened at a login: when, from which address and device, and how to get back in.

    def login_backoff(self, to: str, seen: Sighting, wait: timedelta) -> None:
        self._enqueue_seen("login_backoff", to, seen, seconds=max(1, int(wait.total_seconds())))

    def account_locked(self, to: str, seen: Sighting) -> None:
        self._enqueue_seen("account_locked", to, seen)

    def new_device(self, to: str, seen: Sighting) -> None:
        self._enqueue_seen("new_device", to, seen)

    def _enqueue_seen(self, kind: str, to: str, seen: Sighting, **context: Any) -> None:
        when = seen.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self._enqueue(
            kind,
            to,
            when=when,
            address=seen.address or "an unknown address",
            device=seen.device,
            reset_link=f"{self._public_url}/password/reset",
            **context,
        )

    def _enqueue_change(self, kind: str, to: str, seen: Sighting | None = None, **context: Any) -> None:
        if seen is not None:
            self._enqueue_seen(kind, to, seen, **context)
            return
        when = self._clock().astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self._enqueue(
            kind,
            to,
            when=when,
            address=None,
            device=None,
            reset_link=f"{self._public_url}/password/reset",
            **context,
        )

    # --- rendering and delivery -----------------------------------------------------------------

    def _link(self, path: str, token: str) -> str:
        return f"{self._public_url}{path}?{urlencode({'token': token})}"

    def render(self, kind: str, to: str, **context: Any) -> Mail:
        """The mail ``kind`` for ``to``, from ``templates/<kind>.txt`` and ``.html``."""
        values = {"to": to, "public_url": self._public_url, **context}
        return Mail(
            to=to,
            subject=SUBJECTS[kind],
            text=self._templates.get_template(f"{kind}.txt").render(values),
            html=self._templates.get_template(f"{kind}.html").render(values),
            date=self._clock(),
        )

    def _enqueue(self, kind: str, to: str, **context: Any) -> None:
        try:
            self._queue.put_nowait(self.render(kind, to, **context))
        except asyncio.QueueFull:
            _log.error("mail dropped: outbox full", extra={"to": to, "kind": kind})

    async def run(self) -> None:
        """Deliver queued mails until cancelled."""
        while True:
            mail = await self._queue.get()
            try:
                await self._deliver(mail)
            finally:
                self._queue.task_done()

    async def _deliver(self, mail: Mail) -> None:
        message = mail.message(self._sender, domain=self._domain)
        for attempt in range(1, self._attempts + 1):
            try:
                await self._transport.deliver(message)
                return
            except Exception as exc:
                _log.warning(
                    "mail delivery failed",
                    extra={
                        "to": mail.to,
                        "subject": mail.subject,
                        "attempt": attempt,
                        "error": type(exc).__name__,
                    },
                )
                if attempt < self._attempts:
                    await asyncio.sleep(self._first_pause * 2 ** (attempt - 1))
        _log.error("mail given up", extra={"to": mail.to, "subject": mail.subject})

    async def drain(self) -> None:
        """Wait until every queued mail was delivered or given up."""
        await self._queue.join()
