"""Upkeep: ``doorward mail last`` (the file mailer's newest mail), ``throttle clear``, ``prune`` and
``tune``."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from doorward.cli.base import (
    app,
    fail,
    load_settings,
    mail_app,
    run,
    throttle_app,
    warn_unknown_variables,
)
from doorward.logs import configure_logging


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


@throttle_app.command("clear")
def throttle_clear(
    client: Annotated[str, typer.Option("--client", help="The client's IP address, as doorward sees it.")],
) -> None:
    """Lift every per-client limit of an address.

    Its failed logins, registrations, passkey sign-ins and mail requests are forgotten, in the
    throttle store that is configured (the database, or Redis). An account's wait or lockout is
    lifted by 'users unlock'.
    """
    address, cleared = run(lambda s: s.admin.clear_client(client))
    if not cleared:
        typer.echo(f"nothing to clear for {address}")
        return
    counts = ", ".join(f"{name} {count}" for name, count in sorted(cleared.items()))
    typer.echo(f"cleared {address}: {counts}")


@app.command()
def prune() -> None:
    """Delete what has expired or is no longer of use.

    Expired sessions, mailed tokens and sign-ins waiting for a second factor, throttle counters no
    longer of use, devices not seen on their account for 90 days, and audit events older than
    DOORWARD_AUDIT_RETENTION (365 days unless set). Run it daily.
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
