"""Passwords: a value type that never shows itself, and the policy a new password must meet."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from doorward.core.errors import (
    InvalidRequest,
    PasswordCommon,
    PasswordContext,
    PasswordTooLong,
    PasswordTooShort,
)

MAX_PASSWORD_LENGTH = 1024
"""Hard ceiling in code points after NFKC: long enough for any passphrase, short enough to hash cheaply."""

MAX_RAW_PASSWORD_LENGTH = 4 * MAX_PASSWORD_LENGTH
"""Ceiling on the text as received, before normalisation (NFKC may compose several code points into one)."""

_EDGE_NOISE = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_DIGIT_RUNS = "0123456789" * 3


class Password:
    """A password as received. ``repr`` and ``str`` hide it, so it cannot leak into a log or a trace.

    ``normalised`` (NFKC) is what is hashed and measured for new hashes; ``raw`` is kept because legacy
    schemes hashed the text exactly as it was typed.
    """

    __slots__ = ("normalised", "raw")

    def __init__(self, raw: str) -> None:
        if "\x00" in raw or any("\ud800" <= ch <= "\udfff" for ch in raw):
            raise InvalidRequest("Password contains characters that cannot be used")
        self.raw = raw
        self.normalised = unicodedata.normalize("NFKC", raw)

    def __repr__(self) -> str:
        return "Password('********')"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self.normalised)

    def candidates(self) -> tuple[bytes, ...]:
        """The UTF-8 forms a legacy hash may have been made from: as typed first, then normalised."""
        raw = self.raw.encode()
        normalised = self.normalised.encode()
        return (raw,) if raw == normalised else (raw, normalised)


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's list (from the ``zxcvbn`` package on PyPI)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


@dataclass(frozen=True)
class PasswordPolicy:
    """NIST SP 800-63B rev 4 / ASVS 6.2: length, a blocklist and context words; no composition rules."""

    min_length: int = 15
    max_length: int = MAX_PASSWORD_LENGTH
    service_words: tuple[str, ...] = ("doorward",)

    def check(self, password: Password, *, email: str) -> None:
        """Raise the PasswordRejected subclass naming the first rule the password breaks."""
        length = len(password)
        if length < self.min_length:
            raise PasswordTooShort(f"Password must be at least {self.min_length} characters")
        if length > self.max_length:
            raise PasswordTooLong(f"Password must be at most {self.max_length} characters")
        folded = password.normalised.casefold()
        stems = _stems(folded)
        if _is_context(folded, stems, email, self.service_words):
            raise PasswordContext()
        if _is_common(folded, stems):
            raise PasswordCommon()


def _stems(folded: str) -> set[str]:
    """The password and what is left of it when the usual decorations are taken off.

    Decorations: digits and punctuation at either end ("password123!") and repetition
    ("passwordpassword"): attackers' rule sets try exactly these first.
    """
    stems = {folded, _EDGE_NOISE.sub("", folded)}
    for stem in list(stems):
        unit = _repeated_unit(stem)
        if unit:
            stems |= {unit, _EDGE_NOISE.sub("", unit)}
    return stems - {""}


def _repeated_unit(text: str) -> str | None:
    """The shortest ``u`` with ``text == u * k`` for some k >= 2, or None. Linear time: ``text`` is
    a repetition exactly when it occurs in ``text + text`` before position ``len(text)``."""
    if len(text) < 2:
        return None
    period = (text + text).find(text, 1)
    return text[:period] if period < len(text) else None


def _is_common(folded: str, stems: set[str]) -> bool:
    common = common_passwords()
    if any(stem in common for stem in stems):
        return True
    unit = _repeated_unit(folded)
    if unit and len(unit) <= 4:  # "aaaaaaaaaaaaaaa", "abcabcabcabcabc"
        return True
    compact = re.sub(r"[\s\W_]", "", folded)
    return compact in _DIGIT_RUNS or compact in _DIGIT_RUNS[::-1] or _is_sequence(compact)


def _is_sequence(text: str) -> bool:
    """Every character one code point after (or before) the previous one: "abcdefghijklmnop"."""
    if len(text) < 3:
        return False
    steps = {ord(b) - ord(a) for a, b in pairwise(text)}
    return steps in ({1}, {-1})


def _is_context(folded: str, stems: set[str], email: str, service_words: tuple[str, ...]) -> bool:
    local_part = email.partition("@")[0]
    words = {word.casefold() for word in service_words} | {email}
    if len(local_part) >= 4:
        words.add(local_part)
    if any(stem in words for stem in stems):
        return True
    # Containing the whole address, or the mailbox name, is a derivative too ("alice.smith2024!!").
    return email in folded or (len(local_part) >= 4 and local_part in folded)
