"""TOTP (RFC 6238) and recovery codes: the pure functions under core/factor_checks.py."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from doorward.core import recovery_codes, totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)


def code(at: datetime) -> str:
    """What an authenticator app shows at ``at``."""
    return pyotp.TOTP(SECRET).at(at)


def test_rfc_6238_test_vector() -> None:
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082, of which an app shows the last 6 digits.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp.code_at(secret, 59 // 30) == "287082"


def test_a_new_secret_has_160_bits() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert totp.new_secret() != secret


def test_the_otpauth_uri_is_the_contracts() -> None:
    uri = totp.otpauth_uri(SECRET, "Ada+mfa@Example.com")
    assert uri == (
        f"otpauth://totp/doorward:Ada%2Bmfa@Example.com?secret={SECRET}"
        "&issuer=doorward&algorithm=SHA1&digits=6&period=30"
    )
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == SECRET
    assert parse_qs(urlsplit(uri).query)["issuer"] == ["doorward"]


@pytest.mark.parametrize("drift", [-30, 0, 30])
def test_a_code_of_the_step_before_now_or_after_is_accepted(drift: int) -> None:
    typed = code(NOW + timedelta(seconds=drift))
    assert totp.matching_step(SECRET, typed, NOW, last_step=0) == totp.step_at(NOW) + drift // 30


@pytest.mark.parametrize("drift", [-60, 60, 3600])
def test_a_code_two_steps_away_is_refused(drift: int) -> None:
    assert totp.matching_step(SECRET, code(NOW + timedelta(seconds=drift)), NOW, last_step=0) is None


def test_a_used_step_and_every_earlier_one_are_refused() -> None:
    step = totp.step_at(NOW)
    assert totp.matching_step(SECRET, code(NOW), NOW, last_step=step) is None  # replay
    earlier = code(NOW - timedelta(seconds=30))
    assert totp.matching_step(SECRET, earlier, NOW, last_step=step) is None
    later = code(NOW + timedelta(seconds=30))
    assert totp.matching_step(SECRET, later, NOW, last_step=step) == step + 1


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123 45"])
def test_anything_but_six_ascii_digits_is_no_code(typed: str) -> None:
    assert totp.clean_code(typed) is None
    assert totp.matching_step(SECRET, typed, NOW, last_step=0) is None


def test_spaces_in_a_typed_code_are_ignored() -> None:
    typed = code(NOW)
    spaced = f" {typed[:3]} {typed[3:]} "
    assert totp.matching_step(SECRET, spaced, NOW, last_step=0) == totp.step_at(NOW)


# --- recovery codes --------------------------------------------------------------------------------


def test_ten_recovery_codes_of_50_bits_each() -> None:
    codes = recovery_codes.new_codes()
    assert len(codes) == len(set(codes)) == 10
    for shown in codes:
        assert len(shown) == 11
        assert shown[5] == "-"
        assert set(shown.replace("-", "")) <= set(recovery_codes.ALPHABET)
    assert len(recovery_codes.ALPHABET) ** recovery_codes.LENGTH == 2**50


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("abcde-fghjk", "abcdefghjk"),
        ("  ABCDE FGHJK ", "abcdefghjk"),
        ("abcdefghjk", "abcdefghjk"),
        ("oOiIl-LabcD", "001111abcd"),
        ("abcde-fghj", None),
        ("abcde-fghjkm", None),
        ("abcde-fghju", None),  # u is not in the alphabet
        ("abcde_fghjk", None),
    ],
)
def test_recovery_codes_are_forgiving_to_type(typed: str, expected: str | None) -> None:
    assert recovery_codes.normalise(typed) == expected
