"""Email addresses: one canonical form for lookups, and a shape check for new accounts."""

from __future__ import annotations

import re
import unicodedata

from doorward.core.errors import EmailInvalid

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit less the angle brackets

# Deliberately loose: one "@", no spaces or control characters, a dot in the domain. Whether the
# address really exists is for a verification mail to find out, not for a regular expression.
# Characters with a meaning in mail headers (",;<>()[]\") are refused too: "a,b@example.com" would
# otherwise be two recipients, "x(y)@example.com" a comment, and mail would not go to the stored address.
_NOT_PART = r"@\s,;<>()\[\]\"\\"
_SHAPE = re.compile(rf"[^{_NOT_PART}]{{1,64}}@[^{_NOT_PART}.]+(\.[^{_NOT_PART}.]+)+", re.UNICODE)


def canonical_email(email: str) -> str:
    """NFKC, strip, case-fold: the same function at registration, login and import."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


def validate_new_email(email: str) -> str:
    """Return the address to store (as given, surrounding space removed) or raise EmailInvalid."""
    stored = email.strip()
    canonical = canonical_email(email)
    if len(stored) > MAX_EMAIL_LENGTH or len(canonical) > MAX_EMAIL_LENGTH:
        raise EmailInvalid(f"Email address must be at most {MAX_EMAIL_LENGTH} characters")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for ch in stored):
        raise EmailInvalid()
    if not _SHAPE.fullmatch(canonical):
        raise EmailInvalid()
    return stored
