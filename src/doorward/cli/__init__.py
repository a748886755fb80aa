"""The ``doorward`` command: serve, migrate, tune, and the administrative user and session commands.

A package, one module per concept: base.py (the Typer app, its groups and their shared helpers),
server.py (serve, migrate), accounts.py (users, sessions: the actions), views.py (users list and show,
audit), upkeep.py (mail last, throttle clear, prune, tune), checks.py (info, config check) and
admin_keys.py (admin keys ...).
Importing them registers their commands; help lists them in that order.
"""

from __future__ import annotations

from doorward.cli import accounts, admin_keys, checks, server, upkeep, views  # noqa: F401  (registers the commands)
from doorward.cli.base import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``doorward`` script."""
    app()
