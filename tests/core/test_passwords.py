"""The password policy: length in code points after NFKC, a blocklist, context words, nothing else."""

from __future__ import annotations

import hashlib

import pytest

from doorward.core.errors import (
    InvalidRequest,
    PasswordCommon,
    PasswordContext,
    PasswordRejected,
    PasswordTooLong,
    PasswordTooShort,
)
from doorward.core.passwords import Password, PasswordPolicy, common_passwords

POLICY = PasswordPolicy()
EMAIL = "alice.smith@example.com"


def check(password: str, email: str = EMAIL) -> None:
    POLICY.check(Password(password), email=email)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "tr0ub4dor&3xyzq",  # exactly 15
        "ünïcödé pässwörd ok",
        "🔐🔐 emoji are fine 🔐🔐",
        "x" * 6 + "y" * 4 + "zqwv" + "k",  # no composition rule, no repetition of a short unit
        "a" * 1 + "é" * 14,  # 15 code points, more bytes
    ],
)
def test_accepts_long_unusual_passwords(password: str) -> None:
    check(password)


def test_length_counts_code_points_after_nfkc() -> None:
    # "ﬁ" (U+FB01) is one code point that NFKC turns into two, "fi".
    fourteen = "ﬁ" * 7  # 7 code points as typed, 14 after NFKC
    with pytest.raises(PasswordTooShort, match="at least 15"):
        check(fourteen)
    check(fourteen + "q")  # 15 after NFKC


def test_minimum_is_a_setting() -> None:
    PasswordPolicy(min_length=8).check(Password("zebra-kiwi"), email=EMAIL)
    with pytest.raises(PasswordTooShort):
        POLICY.check(Password("zebra-kiwi"), email=EMAIL)


def test_refuses_over_1024_code_points() -> None:
    filler = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(16))
    check(filler)  # 1024, accepted
    with pytest.raises(PasswordTooLong, match="at most 1024"):
        check(filler + "c")


@pytest.mark.parametrize(
    "password",
    [
        "1qaz2wsx3edc4rfv",  # in the list as it is
        "1QAZ2WSX3EDC4RFV",  # case does not hide it
        "password12345678",  # common word + digits
        "!!!qwerty123456!!!",
        "iloveyouiloveyou",  # repetition of a common word
        "aaaaaaaaaaaaaaaa",
        "abcabcabcabcabcabc",
        "abcdefghijklmnopq",  # a run
        "123456789012345678",
        "987654321098765",
    ],
)
def test_refuses_common_passwords_and_their_usual_variations(password: str) -> None:
    with pytest.raises(PasswordCommon):
        check(password)


@pytest.mark.parametrize(
    "password",
    [
        "alice.smith@example.com",
        "alice.smith2024!!",
        "my name is alice.smith",
        "doorward12345678",
        "doorwarddoorward",
    ],
)
def test_refuses_context_words(password: str) -> None:
    with pytest.raises(PasswordContext):
        check(password)


def test_every_rejection_names_its_rule() -> None:
    for password, code in [
        ("short", "password_too_short"),
        ("password12345678", "password_common"),
        ("doorward12345678", "password_context"),
    ]:
        with pytest.raises(PasswordRejected) as caught:
            check(password)
        assert caught.value.code == code


def test_blocklist_is_zxcvbns_thirty_thousand() -> None:
    common = common_passwords()
    assert len(common) >= 29_000
    assert {"password", "123456", "qwerty"} <= common


def test_password_never_shows_itself() -> None:
    secret = Password("correct horse battery staple")
    assert "horse" not in repr(secret)
    assert "horse" not in str(secret)
    assert "horse" not in f"{secret}"


@pytest.mark.parametrize("bad", ["nul\x00inside", "lone \ud800 surrogate"])
def test_unusable_characters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        Password(bad)
