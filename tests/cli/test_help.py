"""What the command line says of itself: ``--help`` of every command, ``--version``."""

from __future__ import annotations

import pytest
import typer

from doorward import __version__
from doorward.cli import app as cli
from doorward.core import password_hashes
from tests.cli.conftest import add_user, invoke, runner


def every_command() -> list[tuple[str, ...]]:
    """The path of every command and group: (), ("serve",), ("users",), ("users", "add"), ..."""
    paths: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        # typer carries a click of its own: a group is whatever has subcommands.
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(cli), ())
    return paths


def help_of(*path: str) -> str:
    result = runner.invoke(cli, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", every_command(), ids=lambda path: " ".join(path) or "doorward")
def test_help_reads_as_text(path: tuple[str, ...]) -> None:
    """No type placeholders for flags, no reStructuredText quoting, no source paths."""
    text = help_of(*path)
    assert "<bool>" not in text
    assert "``" not in text
    assert ".py" not in text and "doorward/" not in text


def test_import_help_lists_every_scheme_and_its_limit() -> None:
    text = " ".join(help_of("users", "import").split())
    for scheme in (
        "argon2id",
        "argon2i",
        "argon2d",
        "bcrypt",
        "Django pbkdf2_sha256",
        "Django scrypt",
        "SHA-256",
    ):
        assert scheme in text, scheme
    h = password_hashes
    assert f"m at most {h._MAX_ARGON2_MEMORY_KIB} KiB" in text
    assert f"t at most {h._MAX_ARGON2_TIME_COST}" in text and f"p at most {h._MAX_ARGON2_PARALLELISM}" in text
    assert f"cost at most {h._MAX_BCRYPT_COST}" in text
    assert f"at most {h._MAX_PBKDF2_ITERATIONS:,} iterations" in text
    assert f"128 * n * r at most {h._MAX_SCRYPT_MEMORY // 2**20} MiB, p at most 4" in text


def test_version() -> None:
    result = runner.invoke(cli, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"doorward {__version__}\n")


@pytest.mark.parametrize(
    ("command", "echo"),
    [
        (("users", "disable"), "disabled {}; ended 0 session(s)"),
        (("users", "unlock"), "unlocked {}"),
        (("sessions", "revoke"), "ended 0 session(s) of {}"),
    ],
)
def test_commands_echo_the_stored_email_not_as_typed(
    database_url: str, command: tuple[str, ...], echo: str
) -> None:
    add_user(database_url, "Ada.Lovelace@Example.com")
    result = invoke(database_url, *command, "  ADA.LOVELACE@example.COM ")
    assert result.exit_code == 0, result.output
    assert result.stdout == echo.format("Ada.Lovelace@Example.com") + "\n"
