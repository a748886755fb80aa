"""``doorward info`` (what this installation is and whether its stores answer) and ``doorward config
check`` (every setting as doorward reads it, secrets masked). Neither prints a secret: passwords in
URLs become ``***``, secret settings ``**********``."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import typer
from pydantic import SecretStr, ValidationError

from doorward import __version__
from doorward.cli.base import app, fail, load_settings
from doorward.config import Settings, unknown_variables

config_app = typer.Typer(help="Check the settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")

MASK = "**********"


_SECRET_PARAMETERS = ("password", "pass", "secret", "token")


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: in the user part (``user:pw@``) and in the query
    (``?password=``, which both drivers take). A URL that does not parse is masked whole."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK
    query = "&".join(
        f"{name}=***" if name.lower() in _SECRET_PARAMETERS else f"{name}={value}" if sep else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    if parts.password is None and query == parts.query:
        return url  # nothing to hide (and urlunsplit would drop sqlite:///'s empty host)
    if parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:***@{host}" + (f":{port}" if port is not None else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts._replace(query=query))


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return MASK if name != "redis_url" else masked_url(value.get_secret_value())
    if name == "database_url":
        return masked_url(str(value))
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        text = f"{int(seconds)} s" if seconds.is_integer() else f"{seconds} s"
        return text if seconds < 120 else f"{text} ({value})"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    return str(value) if value != "" else '""'  # an empty setting, shown as such


def _from_environment() -> set[str]:
    return {name.upper() for name in os.environ if name.upper().startswith("DOORWARD_")}


@config_app.command("check")
def config_check() -> None:
    """Print every setting as doorward reads it, secrets masked; flag DOORWARD_ names it does not know.

    Exits 1, naming each, when a setting is invalid.
    """
    unknown = unknown_variables(os.environ)
    for name, close in unknown:
        guess = f" (did you mean {close}?)" if close else ""
        typer.echo(f"unknown: {name} is not a doorward setting and is ignored{guess}", err=True)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = "DOORWARD_" + str(error["loc"][0]).upper() if error["loc"] else "settings"
            # The message only, never error["input"]: the value may be a secret.
            typer.echo(f"invalid: {where}: {error['msg']}", err=True)
        raise typer.Exit(code=1) from None
    given = _from_environment()
    width = max(len(name) for name in Settings.model_fields) + len("DOORWARD_")
    for name in Settings.model_fields:
        variable = f"DOORWARD_{name.upper()}"
        source = "set" if variable in given else "default"
        typer.echo(f"{variable:<{width}}  {_shown(name, getattr(settings, name))}  [{source}]")
    typer.echo(f"settings are valid{f'; {len(unknown)} unknown name(s) ignored' if unknown else ''}")


def _first_line(exc: BaseException) -> str:
    from doorward.storage.errors import POOLER_HINT, pooler_trouble  # here: it loads the drivers

    lines = str(getattr(exc, "orig", None) or exc).splitlines()
    first = f"{type(exc).__name__}: {lines[0]}" if lines and lines[0] else type(exc).__name__
    return f"{first}; {POOLER_HINT}" if pooler_trouble(exc) else first


def _database_line(settings: Settings) -> tuple[str, bool]:
    from doorward.storage.migrate import current_revision, newest_revision

    newest = newest_revision()
    try:
        current = current_revision(settings.database_url, settings.db_timeout, pooler=settings.db_pooler)
    except Exception as exc:
        return f"unreachable ({_first_line(exc)})", False
    if current == newest:
        return f"reachable; migrations at {current}, the newest: up to date", True
    at = "none applied" if current is None else f"at {current}"
    return f"reachable; migrations {at}, the newest is {newest}: run doorward migrate", True


def _redis_line(settings: Settings) -> tuple[str, bool]:
    if settings.redis_url is None:
        return "not set (throttle counters in the database)", True
    import redis

    url = settings.redis_url.get_secret_value()
    try:
        with redis.Redis.from_url(
            url, socket_connect_timeout=settings.db_timeout, socket_timeout=settings.db_timeout
        ) as client:
            client.ping()
    except Exception as exc:
        return f"{masked_url(url)} unreachable ({type(exc).__name__})", False
    return f"{masked_url(url)} reachable", True


def _measured_verify(settings: Settings) -> float:
    """Milliseconds one verify of the profile's hash takes here, on one core."""
    hasher = settings.profile.argon2id()
    stored = hasher.hash("a password to measure with")
    started = time.perf_counter()
    hasher.verify(stored, "a password to measure with")
    return (time.perf_counter() - started) * 1000


@app.command("info")
def info() -> None:
    """Print the version, the database and its migrations, the hash profile (with one verify
    measured here) and whether the stores answer. Exits 1 when one does not."""
    settings = load_settings()
    database, database_ok = _database_line(settings)
    redis_text, redis_ok = _redis_line(settings)
    profile = settings.profile
    verify_ms = _measured_verify(settings)
    lines = {
        "database": f"{masked_url(settings.database_url)}: {database}",
        "hash profile": (
            f"{profile.name}: argon2id m={profile.memory_cost} KiB t={profile.time_cost} "
            f"p={profile.parallelism}; one verify took {verify_ms:.2f} ms here"
        ),
        "hash workers": f"{settings.hash_workers}, queue {settings.hash_queue}",
        "redis": redis_text,
        "mailer": (
            f"file, into {settings.mail_dir}"
            if settings.mailer == "file"
            else f"smtp, {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_tls})"
        ),
    }
    typer.echo(f"doorward {__version__}")
    for name, text in lines.items():
        typer.echo(f"{name:<13} {text}")
    if not (database_ok and redis_ok):
        raise fail("a store does not answer (above)")
