"""Time-based one-time passwords (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of drift."""

from __future__ import annotations

import hmac
from datetime import datetime
from urllib.parse import quote

import pyotp

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # a code of the step before or after is accepted too: clocks and typing lag
ISSUER = "doorward"
SECRET_CHARS = 32  # base32: 160 bits, RFC 4226's recommended length


def new_secret() -> str:
    """A fresh secret in base32, as authenticator apps take it, from ``secrets`` (pyotp's SystemRandom)."""
    return pyotp.random_base32(SECRET_CHARS)


def otpauth_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from a QR code."""
    return (
        f"otpauth://totp/{ISSUER}:{quote(email, safe='@')}?secret={secret}&issuer={ISSUER}"
        f"&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    )


def step_at(now: datetime) -> int:
    """The 30-second step ``now`` falls in (seconds since the epoch, divided)."""
    return int(now.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The code of ``step``."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def clean_code(code: str) -> str | None:
    """The 6 ASCII digits of a typed code (spaces removed), or None if it is not one."""
    digits = code.replace(" ", "")
    if len(digits) != DIGITS or not all("0" <= ch <= "9" for ch in digits):
        return None
    return digits


def matching_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The step whose code ``code`` is, among now's and its neighbours later than ``last_step``.

    None when no such step matches: a wrong code, or one already used (a code of ``last_step`` or
    before). The caller stores the step it got with a compare-and-set, so a code is accepted once
    even when two requests race. Every candidate is compared in constant time.
    """
    digits = clean_code(code)
    if digits is None:
        return None
    current = step_at(now)
    matched = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(code_at(secret, step), digits):
            matched = step  # the latest wins: an earlier one would leave it open to a replay
    return matched
