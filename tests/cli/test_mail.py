"""``doorward mail last``: the README's way to read a mailed link out of the file mailer's folder."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.cli.conftest import add_user, api, api_login, assert_one_line_error, invoke
from tests.conftest import EMAIL

README = Path(__file__).resolve().parents[2] / "README.md"
NEW_PASSWORD = "another long passphrase for ada"


def ask_for_reset(database_url: str, mail_dir: Path, email: str = EMAIL) -> None:
    async def action(client: httpx.AsyncClient) -> None:
        response = await client.post("/password/reset/request", json={"email": email})
        assert response.status_code == 202

    api(database_url, action, mail_dir=mail_dir, public_url="https://id.example.com")


def test_the_readme_points_at_the_command() -> None:
    text = README.read_text()
    assert "doorward mail last" in text
    assert "grep token=" not in text  # gave a quoted-printable fragment of the link


def test_mail_last_prints_the_newest_mail_with_its_link_whole(database_url: str, tmp_path: Path) -> None:
    add_user(database_url)
    add_user(database_url, "grace@example.com")
    mail_dir = tmp_path / "mail"
    ask_for_reset(database_url, mail_dir)
    ask_for_reset(database_url, mail_dir, "grace@example.com")

    newest = invoke(database_url, "mail", "last", mail_dir=str(mail_dir))
    assert newest.exit_code == 0, newest.output
    assert newest.stdout.startswith("To: grace@example.com\nSubject: Reset your password\nDate: ")

    result = invoke(database_url, "mail", "last", "--to", EMAIL, mail_dir=str(mail_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"To: {EMAIL}\n")
    # The link on one line of its own, whole: the .eml holds it quoted-printable, cut with "=".
    (link,) = re.findall(
        r"^https://id\.example\.com/password/reset\?token=[A-Za-z0-9_-]{43}$", result.stdout, re.M
    )
    token = link.rsplit("=", 1)[1]

    async def reset(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            "/password/reset/confirm", json={"token": token, "newPassword": NEW_PASSWORD}
        )

    assert api(database_url, reset).status_code == 200
    assert api_login(database_url, EMAIL, NEW_PASSWORD).status_code == 200


def test_no_mail_yet_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    result = invoke(sqlite_url, "mail", "last", mail_dir=str(tmp_path / "nothing"))
    assert_one_line_error(result, "no mail in", "nothing")


def test_no_mail_to_that_address_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    add_user(sqlite_url)
    ask_for_reset(sqlite_url, tmp_path / "mail")
    result = invoke(sqlite_url, "mail", "last", "--to", "nobody@example.com", mail_dir=str(tmp_path / "mail"))
    assert_one_line_error(result, "no mail to nobody@example.com in")


def test_the_smtp_mailer_keeps_no_mail(sqlite_url: str) -> None:
    result = invoke(sqlite_url, "mail", "last", mailer="smtp")
    assert_one_line_error(result, "DOORWARD_MAILER is smtp")
