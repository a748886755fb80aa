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

    def totp_enabled(self, to: str) -> None:
        """Two-step verification with an authenticator app was turned on."""

    def totp_disabled(self, to: str) -> None:
        """Two-step verification was turned off."""

    def recovery_codes_regenerated(self, to: str) -> None:
        """A new set of recovery codes was made; the old ones no longer work."""

    def recovery_code_used(self, to: str, left: int) -> None:
        """A recovery code was used to log in; ``left`` unused ones remain."""

    def mfa_reset(self, to: str) -> None:
        """An administrator removed two-step verification and ended every session."""
