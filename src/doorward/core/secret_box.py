"""Secrets that must be read back (TOTP seeds), encrypted at rest with AES-256-GCM under rotating keys."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
KEY_ID_BYTES = 4
NONCE_BYTES = 12  # AES-GCM's standard nonce; random, so at most 2**32 blobs per key (NIST SP 800-38D)
_INFO = b"doorward secret box v1"
_HEADER = len(VERSION) + KEY_ID_BYTES + NONCE_BYTES


class SecretUndecryptable(Exception):
    """A blob this box cannot open: made under a key it does not hold, altered, or moved to another
    context (another row). Not a DoorwardError: it is an operator's problem, never the user's."""


def _derive(key: bytes) -> bytes:
    # The configured key is text of any length; the cipher needs 32 uniform bytes.
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=_INFO).derive(key)


class SecretBox:
    """``encrypt`` under the first key; ``decrypt`` under whichever key made the blob.

    A blob is ``VERSION + key id + nonce + ciphertext-and-tag``. The key id (4 bytes of SHA-256 of
    the derived key) names the key without revealing it. ``context`` is authenticated, not stored:
    a blob made for ``b"totp:1"`` does not open as ``b"totp:2"``, so a row copied onto another
    account's is refused.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._ciphers: dict[bytes, AESGCM] = {}
        for key in keys:
            derived = _derive(key)
            self._ciphers.setdefault(hashlib.sha256(derived).digest()[:KEY_ID_BYTES], AESGCM(derived))
        self._current = next(iter(self._ciphers))

    def __repr__(self) -> str:
        return f"SecretBox(<{len(self._ciphers)} key(s)>)"

    def encrypt(self, plain: bytes, context: bytes) -> bytes:
        """``plain`` sealed under the first key, bound to ``context``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plain, context)
        return VERSION + self._current + nonce + sealed

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        """What ``encrypt(plain, context)`` sealed, or SecretUndecryptable."""
        blob = bytes(blob)
        if len(blob) < _HEADER + 16 or blob[:1] != VERSION:
            raise SecretUndecryptable("not a secret box blob")
        cipher = self._ciphers.get(blob[1 : 1 + KEY_ID_BYTES])
        if cipher is None:
            raise SecretUndecryptable("made under a key this box does not hold")
        try:
            return cipher.decrypt(blob[1 + KEY_ID_BYTES : _HEADER], blob[_HEADER:], context)
        except InvalidTag:
            raise SecretUndecryptable("altered, or made for another context") from None

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` was made under the first key (else re-encrypt it when convenient)."""
        return bytes(blob[1 : 1 + KEY_ID_BYTES]) == self._current
