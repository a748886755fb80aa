"""What the core tells users by mail. The core says *what* happened; an adapter renders and sends it.

Every method must return at once: sending happens in the background, and a failure to send is
logged and retried, never shown to the client.
"""

from __future__ import annotations

from typing import Protocol


class Notifications(Protocol):
    """Mails the core asks for. ``to`` is always the address stored with the account."""

    def password_reset(self, to: str, token: str) -> None:
        """A single-use link to set a new password."""

    def password_changed(self, to: str) -> None:
        """The password was changed or reset: if it was not you, act now."""

    def verify_email(self, to: str, token: str) -> None:
        """A single-use link confirming the address of a new account."""

    def registration_attempt(self, to: str) -> None:
        """Someone tried to register with this address, which already has an account."""
