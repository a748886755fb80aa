"""Recovery codes: ten single-use codes of 50 bits, easy to read aloud and type, stored only hashed."""

from __future__ import annotations

import secrets

COUNT = 10
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case: no i, l, o, u
LENGTH = 10  # characters of ALPHABET: 5 bits each, 50 bits a code
_TYPOS = str.maketrans({"i": "1", "l": "1", "o": "0"})  # Crockford's reading of what looks alike


def new_codes(count: int = COUNT) -> list[str]:
    """Fresh codes as shown to the user: ``xxxxx-xxxxx``."""
    codes = []
    for _ in range(count):
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append(f"{code[:5]}-{code[5:]}")
    return codes


def normalise(text: str) -> str | None:
    """The form that is hashed and checked: lower case, no spaces or hyphens, i/l read as 1 and o as
    0. None if what is left is not ``LENGTH`` characters of the alphabet."""
    code = text.strip().lower().replace(" ", "").replace("-", "").translate(_TYPOS)
    if len(code) != LENGTH or not all(ch in ALPHABET for ch in code):
        return None
    return code
