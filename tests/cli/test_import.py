"""``doorward users import``: every legacy hash format, upgraded at login; bad lines refused or skipped."""

from __future__ import annotations

import base64
import csv
import hashlib
import re
from pathlib import Path

import argon2
import bcrypt
import pytest
from click.testing import Result

from tests.cli.conftest import (
    add_user,
    api_login,
    assert_one_line_error,
    human_lines,
    invoke,
    stored_hashes,
    user_count,
)
from tests.conftest import EMAIL

WRAPPED_PREFIX = "$doorward-sha256-hmac$"
BARE_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def write_csv(
    path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("email", "password_hash")
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def django_pbkdf2(password: str, salt: str = "s4ltS4lt", iterations: int = 1000) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


# One imported account per hash format, each with its own password.
LEGACY = {
    "sha256@example.com": "legacy sha256 passphrase one",
    "bcrypt@example.com": "legacy bcrypt passphrase two",
    "django@example.com": "legacy django passphrase three",
    "argon2@example.com": "legacy argon2 passphrase four",
}


def legacy_rows() -> list[tuple[str, str]]:
    pw = LEGACY
    return [
        ("sha256@example.com", hashlib.sha256(pw["sha256@example.com"].encode()).hexdigest()),
        (
            "bcrypt@example.com",
            bcrypt.hashpw(pw["bcrypt@example.com"].encode(), bcrypt.gensalt(rounds=4)).decode(),
        ),
        ("django@example.com", django_pbkdf2(pw["django@example.com"])),
        (
            "argon2@example.com",
            argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(pw["argon2@example.com"]),
        ),
    ]


def test_import_every_hash_format_then_log_in_and_upgrade(database_url: str, tmp_path: Path) -> None:
    rows = legacy_rows()
    original = dict(rows)
    result = invoke(database_url, "users", "import", str(write_csv(tmp_path / "users.csv", rows)))
    assert result.exit_code == 0, result.output
    assert "imported 4, skipped 0" in result.stdout

    stored = stored_hashes(database_url)
    assert set(stored) == set(LEGACY)
    # The unsalted SHA-256 digest is never stored as it is.
    assert not [h for h in stored.values() if BARE_SHA256.match(h)], stored
    assert stored["sha256@example.com"].startswith(WRAPPED_PREFIX)
    # The other formats are kept verbatim until the first login.
    for email in ("bcrypt@example.com", "django@example.com", "argon2@example.com"):
        assert stored[email] == original[email]

    for email, password in LEGACY.items():
        wrong = api_login(database_url, email, password + "x")
        assert wrong.status_code == 401, (email, wrong.text)
        response = api_login(database_url, email, password)
        assert response.status_code == 200, (email, response.text)
        assert response.json()["user"]["email"] == email

    upgraded = stored_hashes(database_url)
    for email, password in LEGACY.items():
        assert upgraded[email].startswith("$argon2id$"), (email, upgraded[email])
        assert upgraded[email] != stored[email], email
        # ... and the upgraded hash still accepts the same password.
        assert api_login(database_url, email, password).status_code == 200, email


def test_import_accepts_uppercase_sha256_hex(database_url: str, tmp_path: Path) -> None:
    password = "an uppercase hex digest"
    digest = hashlib.sha256(password.encode()).hexdigest().upper()
    path = write_csv(tmp_path / "users.csv", [("upper@example.com", digest)])
    result = invoke(database_url, "users", "import", str(path))
    assert result.exit_code == 0, result.output
    assert stored_hashes(database_url)["upper@example.com"].startswith(WRAPPED_PREFIX)
    assert api_login(database_url, "upper@example.com", password).status_code == 200


BAD_LINES = {
    "unrecognised hash": (("bad-hash@example.com", "md5:0123456789abcdef"), "Unrecognised password hash"),
    "invalid email": (("not an email", hashlib.sha256(b"x").hexdigest()), "Email address is not valid"),
    "duplicate in file": (("Sha256@Example.com", hashlib.sha256(b"y").hexdigest()), "Duplicate email"),
    "already in database": ((EMAIL, hashlib.sha256(b"z").hexdigest()), "already exists"),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_import_is_all_or_nothing(database_url: str, tmp_path: Path, kind: str) -> None:
    add_user(database_url)
    bad_row, reason = BAD_LINES[kind]
    rows = [*legacy_rows()[:2], bad_row, *legacy_rows()[2:]]  # the bad one is on line 4
    result = invoke(database_url, "users", "import", str(write_csv(tmp_path / "users.csv", rows)))

    assert result.exit_code != 0, result.output
    lines = human_lines(result.stderr)
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("line 4: "), lines
    assert reason in lines[0], lines
    assert lines[1].startswith("error: "), lines
    assert "nothing imported" in lines[1], lines
    assert set(stored_hashes(database_url)) == {EMAIL}


def every_bad_line() -> list[tuple[str, str]]:
    good = legacy_rows()
    return [
        good[0],  # line 2
        BAD_LINES["unrecognised hash"][0],  # line 3
        good[1],  # line 4
        BAD_LINES["invalid email"][0],  # line 5
        BAD_LINES["duplicate in file"][0],  # line 6
        BAD_LINES["already in database"][0],  # line 7
        ("", ""),  # line 8: empty fields
    ]


EXPECTED_BAD = {
    3: "Unrecognised password hash",
    5: "Email address is not valid",
    6: "Duplicate email",
    7: "already exists",
    8: "Email address is not valid",
}


def assert_reports_every_bad_line(result: Result) -> None:
    reported = {}
    for line in human_lines(result.stderr):
        match = re.fullmatch(r"line (\d+): skipped: (.+)", line)
        if match:
            reported[int(match.group(1))] = match.group(2)
    assert set(reported) == set(EXPECTED_BAD), result.stderr
    for number, reason in EXPECTED_BAD.items():
        assert reason in reported[number], (number, reported[number])


def test_import_reports_every_bad_line_and_imports_nothing(database_url: str, tmp_path: Path) -> None:
    add_user(database_url)
    path = write_csv(tmp_path / "users.csv", every_bad_line())
    result = invoke(database_url, "users", "import", str(path))

    assert result.exit_code != 0, result.output
    assert_reports_every_bad_line(result)
    errors = [line for line in human_lines(result.stderr) if line.startswith("error: ")]
    assert errors == ["error: 5 line(s) refused; nothing imported"], result.stderr
    assert set(stored_hashes(database_url)) == {EMAIL}


def test_import_skip_invalid_imports_the_good_lines(database_url: str, tmp_path: Path) -> None:
    add_user(database_url)
    path = write_csv(tmp_path / "users.csv", every_bad_line())
    result = invoke(database_url, "users", "import", "--skip-invalid", str(path))

    assert result.exit_code == 0, result.output
    assert "imported 2, skipped 5" in result.stdout
    assert_reports_every_bad_line(result)
    assert set(stored_hashes(database_url)) == {EMAIL, "sha256@example.com", "bcrypt@example.com"}
    for email in ("sha256@example.com", "bcrypt@example.com"):
        assert api_login(database_url, email, LEGACY[email]).status_code == 200, email
    # The account that was already there keeps its own password, not the file's hash.
    assert api_login(database_url).status_code == 200


@pytest.mark.parametrize("header", [("mail", "password_hash"), ("email", "hash"), ("email", "password")])
def test_import_refuses_a_wrong_header(database_url: str, tmp_path: Path, header: tuple[str, str]) -> None:
    path = write_csv(tmp_path / "users.csv", legacy_rows(), header=header)
    result = invoke(database_url, "users", "import", str(path))
    assert_one_line_error(result, "email,password_hash")
    assert user_count(database_url) == 0


def test_import_refuses_an_empty_file(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = invoke(database_url, "users", "import", str(path))
    assert_one_line_error(result, "email,password_hash")


def test_import_refuses_a_file_that_is_not_utf8(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,password_hash\nj\xf6rg@example.com,abc\n".encode("latin-1"))
    result = invoke(database_url, "users", "import", str(path))
    assert_one_line_error(result, "UTF-8")
    assert user_count(database_url) == 0
