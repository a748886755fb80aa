"""``doorward users ...`` and ``doorward sessions revoke``: the administrative account commands."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from doorward.cli.base import T, fail, run, sessions_app, users_app
from doorward.core.admin import ImportRow
from doorward.core.errors import DoorwardError
from doorward.core.import_csv import read_import_csv
from doorward.wiring import Services


@users_app.command("add")
def users_add(
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account. The password is read from standard input, never from the command line."""
    if not password_stdin:
        raise fail("pass --password-stdin and the password on standard input")
    password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    user = run(lambda s: s.admin.add_user(email, password))
    typer.echo(f"added user {user.id} <{user.email}>")


@users_app.command("import")
def users_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    skip_invalid: Annotated[
        bool, typer.Option(help="Import the valid lines even when some are refused.")
    ] = False,
) -> None:
    """Import accounts with their password hashes from a CSV.

    All in one transaction. The CSV's header names the columns email and password_hash (others are
    ignored). Recognised
    hashes, each within a limit: argon2id, argon2i and argon2d (m at most 262144 KiB, t at most 16,
    p at most 16); bcrypt (cost at most 14); Django pbkdf2_sha256 (at most 5,000,000 iterations);
    Django scrypt (128 * n * r at most 256 MiB, p at most 4); bare SHA-256 hex, wrapped at import.

    Unless --skip-invalid, one refused line imports nothing.
    """
    rows = _read_import(file)
    report = run(lambda s: s.admin.import_users(rows, skip_invalid=skip_invalid))
    for line, reason in report.skipped:
        typer.echo(f"line {line}: skipped: {reason}", err=True)
    if report.skipped and not skip_invalid:
        raise fail(f"{len(report.skipped)} line(s) refused; nothing imported")
    typer.echo(f"imported {report.imported}, skipped {len(report.skipped)}")


def _read_import(file: Path) -> list[ImportRow]:
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise fail("the file is not UTF-8 text") from None
    try:
        return read_import_csv(text)
    except DoorwardError as exc:
        raise fail(exc.text) from None


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable an account and end all its sessions."""
    stored, ended = run(lambda s: _as_stored(s, email, s.admin.disable_user))
    typer.echo(f"disabled {stored}; ended {ended} session(s)")


@users_app.command("mfa-reset")
def users_mfa_reset(email: str) -> None:
    """Remove an account's two-step verification.

    For a user who lost both the app and the recovery codes: ends every session and mails the user.
    """
    stored, ended = run(lambda s: _as_stored(s, email, s.admin.reset_mfa))
    typer.echo(f"reset two-step verification of {stored}; ended {ended} session(s)")


@users_app.command("enable")
def users_enable(email: str) -> None:
    """Enable a disabled account: its password logs in again."""
    user = run(lambda s: s.admin.enable_user(email))
    typer.echo(f"enabled {user.email}")


@users_app.command("delete")
def users_delete(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking to confirm.")] = False,
) -> None:
    """Delete an account and everything of it: sessions, links, second factors, passkeys.

    It cannot be undone. The audit trail keeps the account's events, by its id, and a user.deleted
    event without the email. Asks to confirm unless --yes.
    """
    ref: int | str = email
    if not yes:
        user = run(lambda s: s.admin.find_user(email))
        question = f"Delete {user.email} (user {user.id}) and all its sessions, factors and passkeys?"
        if not typer.confirm(question, default=False):
            raise fail("nothing deleted")
        ref = user.id  # the account confirmed, even if the email changed hands meanwhile
    deleted = run(lambda s: s.admin.delete_user(ref))
    typer.echo(
        f"deleted {deleted.user.email} (user {deleted.user.id}); ended {deleted.sessions_ended} session(s)"
    )


@users_app.command("reset-password")
def users_reset_password(email: str) -> None:
    """Mail the account a password reset link.

    The link the user's own request mails; an earlier link stops working. Not for a disabled account.
    """
    user = run(lambda s: s.admin.send_password_reset(email))
    typer.echo(f"mailed a password reset link to {user.email}")


@users_app.command("unlock")
def users_unlock(email: str) -> None:
    """Lift a login wait or lockout on an account."""
    stored, _ = run(lambda s: _as_stored(s, email, s.admin.unlock_user))
    typer.echo(f"unlocked {stored}")


@sessions_app.command("revoke")
def sessions_revoke(email: str) -> None:
    """End every session of an account."""
    stored, ended = run(lambda s: _as_stored(s, email, s.admin.revoke_sessions))
    typer.echo(f"ended {ended} session(s) of {stored}")


async def _as_stored(services: Services, email: str, action: Callable[[str], Awaitable[T]]) -> tuple[str, T]:
    """``action(email)``, and the account's email as stored (as registered), for the echo: not as typed."""
    user = await services.admin.find_user(email)
    return user.email, await action(email)
