"""Hash schemes: argon2id for new hashes; legacy schemes verified, then flagged for upgrade."""

from __future__ import annotations

import base64
import hashlib
import re

import argon2
import bcrypt
import pytest

from doorward.core.errors import UnrecognisedHash
from doorward.core.password_hashes import WRAPPED_SHA256_PREFIX, PasswordHasher, Scheme, Verdict, identify
from doorward.core.passwords import Password
from doorward.core.profiles import OWASP_2023, TESTING

SECRET = "correct horse battery staple"
KEY = b"k" * 32


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(TESTING, KEY)


def django_pbkdf2(password: str, salt: str = "saltsalt", iterations: int = 1000) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def django_scrypt(password: str, salt: str = "saltsalt", n: int = 2**14) -> str:
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=8, p=1, dklen=64)
    return f"scrypt${n}${salt}$8$1${base64.b64encode(digest).decode()}"


def legacy_hashes(password: str) -> dict[Scheme, str]:
    return {
        Scheme.SCRYPT: django_scrypt(password),
        Scheme.SHA256: hashlib.sha256(password.encode()).hexdigest(),
        Scheme.BCRYPT: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode(),
        Scheme.PBKDF2_SHA256: django_pbkdf2(password),
        Scheme.ARGON2: argon2.PasswordHasher(time_cost=1, memory_cost=16, parallelism=2).hash(password),
    }


def test_new_hashes_are_argon2id_of_the_current_profile(hasher: PasswordHasher) -> None:
    stored = hasher.hash(Password(SECRET))
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify(stored, Password(SECRET)).ok
    assert not hasher.verify(stored, Password(SECRET + "!")).ok


def test_owasp_profile_parameters() -> None:
    stored = PasswordHasher(OWASP_2023, KEY).hash(Password(SECRET))
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_salted_two_hashes_differ(hasher: PasswordHasher) -> None:
    assert hasher.hash(Password(SECRET)) != hasher.hash(Password(SECRET))


def test_current_hash_needs_no_rehash(hasher: PasswordHasher) -> None:
    verdict = hasher.verify(hasher.hash(Password(SECRET)), Password(SECRET))
    assert verdict.ok and not verdict.needs_rehash


@pytest.mark.parametrize("scheme", list(legacy_hashes("x")))
def test_legacy_schemes_verify_and_ask_for_upgrade(hasher: PasswordHasher, scheme: Scheme) -> None:
    stored = legacy_hashes(SECRET)[scheme]
    assert identify(stored) is scheme
    assert hasher.verify(stored, Password(SECRET)).ok
    assert hasher.verify(stored, Password(SECRET)).needs_rehash
    assert not hasher.verify(stored, Password("wrong " + SECRET)).ok


def test_legacy_hash_of_the_text_as_typed_verifies(hasher: PasswordHasher) -> None:
    # The seed hashed what was typed; doorward normalises (NFKC) before hashing new passwords.
    typed = "ﬁne password for the legacy login"
    stored = hashlib.sha256(typed.encode()).hexdigest()
    assert hasher.verify(stored, Password(typed)).ok


def test_unknown_user_verifies_a_dummy_and_fails(hasher: PasswordHasher) -> None:
    assert hasher.verify(None, Password(SECRET)).ok is False


def test_unrecognised_stored_hash_never_verifies(hasher: PasswordHasher) -> None:
    assert identify("md5$abc") is None
    assert not hasher.verify("md5$abc", Password(SECRET)).ok


def test_import_wraps_bare_sha256(hasher: PasswordHasher) -> None:
    bare = hashlib.sha256(SECRET.encode()).hexdigest()
    wrapped = hasher.for_import(bare)
    assert wrapped.startswith(WRAPPED_SHA256_PREFIX + "$argon2id$")
    assert bare not in wrapped
    assert not re.fullmatch(r"[0-9a-f]{64}", wrapped)
    verdict = hasher.verify(wrapped, Password(SECRET))
    assert verdict.ok and verdict.needs_rehash
    assert not hasher.verify(wrapped, Password("not " + SECRET)).ok


def test_wrapped_hash_depends_on_the_key(hasher: PasswordHasher) -> None:
    wrapped = hasher.for_import(hashlib.sha256(SECRET.encode()).hexdigest())
    assert not PasswordHasher(TESTING, b"another key " * 3).verify(wrapped, Password(SECRET)).ok


@pytest.mark.parametrize("scheme", [Scheme.BCRYPT, Scheme.PBKDF2_SHA256, Scheme.ARGON2, Scheme.SCRYPT])
def test_import_keeps_salted_hashes_as_they_are(hasher: PasswordHasher, scheme: Scheme) -> None:
    stored = legacy_hashes(SECRET)[scheme]
    assert hasher.for_import(stored) == stored


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext-password",
        "$argon2id$v=19$m=8,t=1,p=1$garbage",
        "pbkdf2_sha256$99999999999$salt$AAAA",  # would pin a core for minutes
        WRAPPED_SHA256_PREFIX + "$argon2id$x",  # only doorward makes these
        "$2b$31$" + "a" * 53,  # bcrypt cost 31: days per verification
        "scrypt$1048576$salt$64$1$AAAA",  # 8 GiB
        "scrypt$1000$salt$8$1$AAAA",  # n not a power of two
        "$argon2id$v=19$m=4194304,t=1000,p=4$c29tZXNhbHRzYWx0$" + "A" * 43,  # 4 GiB, 1000 passes
    ],
)
def test_import_refuses_unrecognised_or_abusive_hashes(hasher: PasswordHasher, stored: str) -> None:
    with pytest.raises(UnrecognisedHash):
        hasher.for_import(stored)


def test_a_too_costly_stored_hash_is_never_verified(hasher: PasswordHasher) -> None:
    # Even if such a row reached the database, a login must not spend 4 GiB on it.
    monster = "$argon2id$v=19$m=4194304,t=1000,p=4$c29tZXNhbHRzYWx0$" + "A" * 43
    assert hasher.verify(monster, Password(SECRET)) == Verdict(ok=False)


def test_bcrypt_compares_the_first_72_bytes_like_the_legacy_system(hasher: PasswordHasher) -> None:
    long_password = "b" * 100
    stored = bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    assert hasher.verify(stored, Password(long_password)).ok
