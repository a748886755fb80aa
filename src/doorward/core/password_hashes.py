"""Password hashes: argon2id for everything new, and the legacy schemes doorward can still verify.

Every stored hash is a self-describing string, so schemes coexist and each is upgraded to the current
argon2id profile at the user's next successful login (verify, then needs-rehash, then rehash).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

from doorward.core.errors import UnrecognisedHash
from doorward.core.passwords import Password
from doorward.core.profiles import Profile

WRAPPED_SHA256_PREFIX = "$doorward-sha256-hmac$"
"""An imported unsalted SHA-256, stored as ``prefix + argon2id(HMAC-SHA256(key, sha256 digest))``."""

# Cost ceilings for hashes doorward did not make: a single login must not be able to pin a core for
# seconds or claim gigabytes. Generous next to current recommendations (Django 5: ~1M PBKDF2
# iterations; bcrypt cost 10-12; argon2 at most a few hundred MiB).
_MAX_PBKDF2_ITERATIONS = 5_000_000
_MAX_BCRYPT_COST = 14
_MAX_ARGON2_MEMORY_KIB = 256 * 1024
_MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # bytes: 128 * n * r
_MAX_ARGON2_TIME_COST = 16
_MAX_ARGON2_PARALLELISM = 16
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class Scheme(enum.Enum):
    """The password hash formats doorward recognises."""

    ARGON2 = "argon2"
    BCRYPT = "bcrypt"
    PBKDF2_SHA256 = "pbkdf2_sha256"  # Django's format
    SCRYPT = "scrypt"  # Django's format: scrypt$n$salt$r$p$base64
    SHA256 = "sha256"  # the seed's unsalted hex digest
    WRAPPED_SHA256 = "wrapped_sha256"


def identify(stored: str) -> Scheme | None:
    """The scheme a stored hash is in, or None when doorward cannot verify it."""
    if stored.startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
        return Scheme.ARGON2
    if stored.startswith(("$2a$", "$2b$", "$2y$")) and len(stored) == 60:
        return Scheme.BCRYPT
    if stored.startswith("pbkdf2_sha256$") and stored.count("$") == 3:
        return Scheme.PBKDF2_SHA256
    if stored.startswith("scrypt$") and stored.count("$") == 5:
        return Scheme.SCRYPT
    if stored.startswith(WRAPPED_SHA256_PREFIX):
        return Scheme.WRAPPED_SHA256
    if _HEX64.fullmatch(stored):
        return Scheme.SHA256
    return None


HashOp = Literal["verify", "hash", "for_import"]
"""The PasswordHasher methods a HashPool runs off the event loop, by name: the name is what a
Runner that hashes in another process sends there."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of a verification: did it match, and should the hash be replaced."""

    ok: bool
    needs_rehash: bool = False


class PasswordHasher:
    """Hashes with the current profile and verifies any recognised scheme.

    ``key`` is the HMAC key (pepper) that wraps imported unsalted SHA-256 digests.
    Every method is CPU-bound and blocking: callers run them in the hash pool, off the event loop.
    """

    def __init__(self, profile: Profile, key: bytes) -> None:
        self.profile = profile
        self.key = key
        self._argon2 = profile.argon2id()
        # Verified instead of a real hash when the account does not exist, so that an unknown email
        # costs exactly what a wrong password costs.
        self._dummy = self._argon2.hash(secrets.token_urlsafe(32))

    def hash(self, password: Password) -> str:
        """A new argon2id PHC string of the normalised password, with the current profile."""
        return self._argon2.hash(password.normalised.encode())

    def verify(self, stored: str | None, password: Password) -> Verdict:
        """Check ``password`` against ``stored``; ``None`` (no such account) verifies a dummy and fails."""
        if stored is None:
            self._verify_argon2(self._dummy, password.normalised.encode())
            return Verdict(ok=False)
        scheme = identify(stored)
        if scheme is not None and not within_cost_limits(scheme, stored):
            scheme = None  # verified like an unusable hash: same cost as a failure, never a match
        if scheme is Scheme.ARGON2:
            if not self._verify_argon2(stored, password.normalised.encode()):
                return Verdict(ok=False)
            return Verdict(ok=True, needs_rehash=self._argon2.check_needs_rehash(stored))
        if scheme is None:
            # Same cost as a real failure: an unusable hash must not be told apart by timing either.
            self._verify_argon2(self._dummy, password.normalised.encode())
            return Verdict(ok=False)
        ok = any(self._verify_legacy(scheme, stored, candidate) for candidate in password.candidates())
        return Verdict(ok=ok, needs_rehash=ok)

    def for_import(self, stored: str) -> str:
        """The form an imported hash is stored in; raise UnrecognisedHash for an unknown format.

        A bare SHA-256 digest is never stored as it is: it is wrapped in argon2id over a keyed HMAC,
        so a leaked table cannot be looked up in precomputed SHA-256 tables.
        """
        stored = stored.strip()
        scheme = identify(stored)
        # Every format is printable ASCII; a NUL (which PostgreSQL refuses in text) is no hash.
        if (
            scheme is None
            or scheme is Scheme.WRAPPED_SHA256
            or not (stored.isascii() and stored.isprintable())
        ):
            raise UnrecognisedHash()
        if scheme is Scheme.SHA256:
            return WRAPPED_SHA256_PREFIX + self._argon2.hash(self._wrap(bytes.fromhex(stored)))
        if scheme is Scheme.ARGON2:
            try:
                argon2.extract_parameters(stored)
            except InvalidHashError as exc:
                raise UnrecognisedHash(
                    "Malformed argon2 hash (argon2 hashes contain commas: quote the CSV field)"
                ) from exc
        if scheme is Scheme.PBKDF2_SHA256 and not _pbkdf2_parts(stored):
            raise UnrecognisedHash("Malformed pbkdf2_sha256 hash")
        if scheme is Scheme.SCRYPT and not _scrypt_parts(stored):
            raise UnrecognisedHash("Malformed scrypt hash")
        if not within_cost_limits(scheme, stored):
            raise UnrecognisedHash(f"{scheme.value} hash is more costly than doorward verifies")
        return stored

    def _wrap(self, sha256_digest: bytes) -> bytes:
        return hmac.new(self.key, sha256_digest, hashlib.sha256).digest()

    def _verify_argon2(self, stored: str, secret: bytes) -> bool:
        try:
            return self._argon2.verify(stored, secret)
        except (VerificationError, InvalidHashError):
            return False

    def _verify_legacy(self, scheme: Scheme, stored: str, secret: bytes) -> bool:
        if scheme is Scheme.SHA256:
            return hmac.compare_digest(hashlib.sha256(secret).hexdigest(), stored.lower())
        if scheme is Scheme.WRAPPED_SHA256:
            wrapped = self._wrap(hashlib.sha256(secret).digest())
            return self._verify_argon2(stored.removeprefix(WRAPPED_SHA256_PREFIX), wrapped)
        if scheme is Scheme.BCRYPT:
            try:
                # bcrypt only ever read the first 72 bytes; the legacy system compared exactly those.
                return bcrypt.checkpw(secret[:72], stored.encode())
            except ValueError:
                return False
        if scheme is Scheme.PBKDF2_SHA256:
            parts = _pbkdf2_parts(stored)
            if parts is None or parts[0] > _MAX_PBKDF2_ITERATIONS:
                return False
            iterations, salt, expected = parts
            actual = hashlib.pbkdf2_hmac("sha256", secret, salt.encode(), iterations)
            return hmac.compare_digest(base64.b64encode(actual).decode(), expected)
        if scheme is Scheme.SCRYPT:
            scrypt = _scrypt_parts(stored)
            if scrypt is None:
                return False
            n, salt, r, p, expected = scrypt
            actual = hashlib.scrypt(
                secret, salt=salt.encode(), n=n, r=r, p=p, maxmem=2 * _MAX_SCRYPT_MEMORY, dklen=64
            )
            return hmac.compare_digest(base64.b64encode(actual).decode(), expected)
        raise AssertionError(scheme)  # pragma: no cover - every scheme is handled above


def within_cost_limits(scheme: Scheme, stored: str) -> bool:
    """False for a hash whose parameters would make one verification unreasonably costly."""
    if scheme is Scheme.BCRYPT:
        cost = stored[4:6]
        return cost.isdigit() and int(cost) <= _MAX_BCRYPT_COST
    if scheme is Scheme.PBKDF2_SHA256:
        parts = _pbkdf2_parts(stored)
        return parts is not None and parts[0] <= _MAX_PBKDF2_ITERATIONS
    if scheme is Scheme.SCRYPT:
        scrypt = _scrypt_parts(stored)
        return scrypt is not None and 128 * scrypt[0] * scrypt[2] <= _MAX_SCRYPT_MEMORY and scrypt[3] <= 4
    if scheme is Scheme.ARGON2:
        try:
            params = argon2.extract_parameters(stored)
        except InvalidHashError:
            return True  # malformed, not costly: verification simply fails
        return (
            params.memory_cost <= _MAX_ARGON2_MEMORY_KIB
            and params.time_cost <= _MAX_ARGON2_TIME_COST
            and params.parallelism <= _MAX_ARGON2_PARALLELISM
        )
    return True


def _scrypt_parts(stored: str) -> tuple[int, str, int, int, str] | None:
    _, n, salt, r, p, expected = stored.split("$")
    if not (n.isdigit() and r.isdigit() and p.isdigit()):
        return None
    n_, r_, p_ = int(n), int(r), int(p)
    if n_ < 2 or n_ & (n_ - 1) or r_ < 1 or p_ < 1:  # n must be a power of two
        return None
    return n_, salt, r_, p_, expected


def _pbkdf2_parts(stored: str) -> tuple[int, str, str] | None:
    _, iterations, salt, expected = stored.split("$")
    if not iterations.isdigit() or int(iterations) < 1:
        return None
    return int(iterations), salt, expected
