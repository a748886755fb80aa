"""The ``doorward`` command's Typer app and its groups, and what every command shares: settings
loaded with one-line errors, and running a use case with the services of this environment."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from doorward import __version__
from doorward.config import Settings, unknown_variables
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
throttle_app = typer.Typer(help="Lift throttle limits.", no_args_is_help=True)
app.add_typer(mail_app, name="mail")
app.add_typer(throttle_app, name="throttle")


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
        async with open_services(settings, serving=False) as services:
            return await action(services)

    try:
        return asyncio.run(main())
    except DoorwardError as exc:
        raise fail(exc.text) from None
