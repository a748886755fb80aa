"""The ``doorward`` command: serve, migrate, tune, and the administrative user and session commands."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from doorward import __version__
from doorward.config import Settings, unknown_variables
from doorward.core.admin import ImportRow
from doorward.core.errors import DoorwardError
from doorward.logs import configure_logging
from doorward.wiring import Services, open_services

T = TypeVar("T")

_log = logging.getLogger("doorward.cli")

app = typer.Typer(
    help="doorward: a login and session service.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help, as click writes it: typer's rich panels show "<bool>" beside every flag.
    rich_markup_mode=None,
)
users_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
sessions_app = typer.Typer(help="Manage sessions.", no_args_is_help=True)
mail_app = typer.Typer(
    help="Read the mails the file mailer wrote (DOORWARD_MAILER=file).", no_args_is_help=True
)
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")
app.add_typer(mail_app, name="mail")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"doorward {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """doorward: a login and session service."""


def fail(message: str) -> typer.Exit:
    """Print a one-line error and give the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def load_settings() -> Settings:
    """Settings from the environment, or a one-line error naming the bad variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "DOORWARD_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise fail(f"{name}: {first['msg']}") from None
    configure_logging(settings.log_level, access_log=settings.access_log)
    warn_unknown_variables()
    return settings


def warn_unknown_variables() -> None:
    """A warning for each DOORWARD_* variable no setting reads: a misspelt one is otherwise ignored in
    silence. The name only, never the value (it may be a secret)."""
    for name, close in unknown_variables(os.environ):
        guess = f"; did you mean {close}?" if close else ""
        _log.warning("%s is not a doorward setting and is ignored%s", name, guess, extra={"variable": name})


def run(action: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``action`` with the services of this environment; doorward errors end in one line."""
    settings = load_settings()

    async def main() -> T:
        async with open_services(settings) as services:
            return await action(services)

    try:
        return asyncio.run(main())
    except DoorwardError as exc:
        raise fail(exc.text) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    migrate: Annotated[bool, typer.Option(help="Bring the schema up to date first.")] = True,
) -> None:
    """Serve the HTTP API, migrating the database first.

    With --no-migrate, the schema must be up to date already. With several workers on Linux, each
    worker accepts on a socket of its own, and the workers share hashing processes.
    """
    import uvicorn

    from doorward.serve.hash_processes import Hashers, HashersNotReady
    from doorward.serve.workers import (
        GRACEFUL_SECONDS,
        Workers,
        listening_socket,
        listening_sockets,
        reuse_port_supported,
    )

    settings = load_settings()
    if migrate:
        _migrate(settings)
    else:
        _require_current_schema(settings)
    config = uvicorn.Config(
        "doorward.web.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # keep doorward's JSON logging
        proxy_headers=False,  # the client address comes from the socket (ASVS 4.1.3)
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    try:
        if workers > 1 and reuse_port_supported():
            sockets = listening_sockets(host, port, workers, config.backlog)
        else:  # one worker; or no kernel balancing: the workers share one socket, as under uvicorn's own
            sockets = [listening_socket(host, port, config.backlog)] * workers
    except OSError as exc:  # in use, not allowed, no such address, a name that does not resolve
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if workers == 1:
        # uvicorn says where it listens only for a socket it bound itself.
        address = f"[{host}]" if ":" in host else host
        _log.info("serving on http://%s:%d (Ctrl+C to stop)", address, sockets[0].getsockname()[1])
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: uvicorn has shut down already
            server.run(sockets=sockets)
        if not server.started:
            raise fail("the server did not start (its log is above)")
        return
    try:
        hashers = Hashers(settings.hash_workers)
    except OSError as exc:  # a TMPDIR too long for a socket's path, or not writable
        raise fail(f"cannot create the hashing processes' socket: {exc.strerror or exc}") from None
    # The workers read it when they start, and each logs what it hashes on (web/app.py).
    os.environ["DOORWARD_HASH_SOCKET"] = hashers.path
    try:
        hashers.start()
        served = Workers(config, sockets, on_check=hashers.replace_dead, on_reload=hashers.restart).run()
    except HashersNotReady:
        raise fail("the hashing processes did not start (their errors are above)") from None
    finally:
        hashers.stop()
    if not served:
        raise fail("a worker failed to start (its log is above)")


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""
    _migrate(load_settings())
    typer.echo("database schema is up to date")


def _require_current_schema(settings: Settings) -> None:
    """Stop with one line unless the schema is up to date, rather than each worker with a traceback."""
    from doorward.storage.migrate import current_revision, newest_revision

    try:
        current = current_revision(settings.database_url, settings.db_timeout)
    except Exception as exc:
        raise fail(f"cannot read the database schema's revision: {_first_line(exc)}") from None
    newest = newest_revision()
    if current != newest:
        at = "no revision" if current is None else f"at {current}"
        raise fail(
            f"the database schema is not up to date ({at}; the newest is {newest}): "
            "run doorward migrate, or serve without --no-migrate"
        )


def _first_line(exc: BaseException) -> str:
    """``Type: the first line of its message``, of a driver's error too (its ``orig``)."""
    lines = str(getattr(exc, "orig", None) or exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _migrate(settings: Settings) -> None:
    from doorward.storage import upgrade

    try:
        upgrade(settings.database_url)
    except Exception as exc:
        raise fail(f"migration failed: {_first_line(exc)}") from None


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
    rows = list(_read_import(file))
    report = run(lambda s: s.admin.import_users(rows, skip_invalid=skip_invalid))
    for line, reason in report.skipped:
        typer.echo(f"line {line}: skipped: {reason}", err=True)
    if report.skipped and not skip_invalid:
        raise fail(f"{len(report.skipped)} line(s) refused; nothing imported")
    typer.echo(f"imported {report.imported}, skipped {len(report.skipped)}")


def _read_import(file: Path) -> Iterator[ImportRow]:
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or {"email", "password_hash"} - set(reader.fieldnames):
                raise fail("the CSV header must be: email,password_hash")
            for row in reader:
                yield ImportRow(reader.line_num, row["email"] or "", row["password_hash"] or "")
    except UnicodeDecodeError:
        raise fail("the file is not UTF-8 text") from None
    except csv.Error as exc:
        raise fail(f"malformed CSV: {exc}") from None


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
    ended = run(lambda s: s.admin.reset_mfa(email))
    typer.echo(f"reset two-step verification of {email}; ended {ended} session(s)")


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


@mail_app.command("last")
def mail_last(
    to: Annotated[str | None, typer.Option(help="The newest mail to this address.")] = None,
) -> None:
    """Print the newest mail the file mailer wrote.

    From DOORWARD_MAIL_DIR: its To, Subject and Date, then its plain text with links whole.
    """
    from doorward.mail import last_mail, plain_text

    settings = load_settings()
    if settings.mailer != "file":
        raise fail("DOORWARD_MAILER is smtp: mails are sent, not kept in DOORWARD_MAIL_DIR")
    message = last_mail(settings.mail_dir, to)
    if message is None:
        raise fail(f"no mail{f' to {to}' if to else ''} in {settings.mail_dir}")
    for header in ("To", "Subject", "Date"):
        typer.echo(f"{header}: {message[header]}")
    typer.echo("")
    typer.echo(plain_text(message), nl=False)


@app.command()
def prune() -> None:
    """Delete what has expired or is no longer of use.

    Expired sessions, mailed tokens and sign-ins waiting for a second factor, and throttle counters
    no longer of use. Run it daily.
    """
    pruned = run(lambda s: s.admin.prune())
    typer.echo(", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in pruned.items()))


@app.command()
def tune(
    target_ms: Annotated[float, typer.Option(min=1, help="Time one hash may take on one core.")] = 100.0,
    memory_kib: Annotated[int, typer.Option(min=8, help="argon2 memory per hash.")] = 19_456,
) -> None:
    """Print argon2id parameters measured on this machine.

    The time cost is raised until one hash takes about --target-ms.
    """
    import argon2

    configure_logging()  # tune reads no setting, but says so of a misspelt one as every command does
    warn_unknown_variables()

    time_cost = 1
    while True:
        hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        started = time.perf_counter()
        for _ in range(3):
            hasher.hash("a password to measure with")
        elapsed_ms = (time.perf_counter() - started) / 3 * 1000
        if elapsed_ms >= target_ms or time_cost >= 20:
            break
        time_cost += 1
    cores = os.cpu_count() or 1
    typer.echo(f"argon2id m={memory_kib} KiB t={time_cost} p=1: {elapsed_ms:.1f} ms per hash")
    typer.echo(f"about {cores * 1000 / elapsed_ms:.0f} hashes/s with {cores} cores busy")
    typer.echo(f"memory at DOORWARD_HASH_WORKERS={cores}: {cores * memory_kib / 1024:.0f} MiB")


def main() -> None:
    """Entry point of the ``doorward`` script."""
    app()
