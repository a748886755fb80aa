"""Breached passwords (NIST SP 800-63B rev 4 §3.1.1.2): refused when set, reported after a login.

The core only computes the SHA-1 and decides; a ``BreachedPasswords`` adapter (doorward/breaches.py)
asks a k-anonymity range service with the hash's first 5 hex characters, so neither the password
nor its full hash leaves the process.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from doorward.core.errors import PasswordRejected
from doorward.core.passwords import Password
from doorward.core.ports import BreachedPasswords

CHECK_INTERVAL = timedelta(days=1)
"""A login asks the range service about an account's password at most this often."""


class PasswordBreached(PasswordRejected):
    """The password appears in a known data breach: a k-anonymity range service lists it."""

    code = "password_breached"
    message = "This password has appeared in a data breach, so attackers try it; choose a different one"


def sha1_hex(password: Password) -> str:
    """The upper-case SHA-1 hex of the normalised password, as range services list them."""
    return hashlib.sha1(password.normalised.encode(), usedforsecurity=False).hexdigest().upper()


def check_due(checked_at: datetime | None, now: datetime) -> bool:
    """Whether a login at ``now`` should ask about a password last asked about at ``checked_at``."""
    return checked_at is None or now - checked_at >= CHECK_INTERVAL


async def refuse_breached(breached: BreachedPasswords | None, password: Password) -> None:
    """Raise PasswordBreached if the range service lists ``password``; nothing when it is off or
    does not answer (fail open: the adapter logs and counts that)."""
    if breached is not None and await breached.occurrences(sha1_hex(password)):
        raise PasswordBreached()
