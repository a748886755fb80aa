"""Session tokens: 256 random bits for the client, only their SHA-256 digest for the database."""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of 32 bytes, unpadded


def new_token() -> str:
    """A fresh, unguessable token (ASVS 7.2.3 asks for at least 128 bits; this is 256)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    """What the database stores and looks up: a leaked table yields no usable token.

    A plain (unsalted, fast) hash is enough here, unlike for passwords: the token has 256 bits of
    entropy, so there is nothing to guess.
    """
    return hashlib.sha256(token.encode("ascii")).digest()


def looks_like_token(token: str) -> bool:
    """Cheap shape check so junk never costs a database round trip."""
    return _TOKEN_SHAPE.fullmatch(token) is not None


_SESSION_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")  # base64url of 16 bytes


def looks_like_session_id(session_id: str) -> bool:
    """Cheap shape check: junk ids never reach the database (nor a write lock)."""
    return _SESSION_ID_SHAPE.fullmatch(session_id) is not None


def new_session_id() -> str:
    """The public, non-secret id of a session (listing and revoking name sessions by it)."""
    return secrets.token_urlsafe(16)
