"""``doorward admin keys create | list | revoke``: the keys of the admin API (``/admin/*``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from doorward.cli.base import app, run
from doorward.core.models import AdminKey, AdminScope

admin_app = typer.Typer(help="Manage the admin API (/admin/*).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage the admin API's keys.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
admin_app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: str,
    scope: Annotated[
        AdminScope,
        typer.Option(help="read: look accounts and the audit trail up; write: change accounts too."),
    ] = AdminScope.READ,
) -> None:
    """Make an admin key and print it, once: only its digest is kept.

    The key alone goes to standard output (KEY=$(doorward admin keys create ci)); send it as
    Authorization: Bearer KEY. NAME (letters, digits, '.', '-', '_') names it in the audit trail.
    """
    record, key = run(lambda s: s.keyring.create(name, scope))
    typer.echo(key)
    typer.echo(
        f"created admin key {record.name} (scope {record.scope.value}); it is shown this once", err=True
    )


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of lines.")] = False,
) -> None:
    """List the admin keys (never the keys themselves): name, scope, created, revoked."""
    keys = run(lambda s: s.keyring.list())
    if as_json:
        typer.echo(json.dumps([_key_json(key) for key in keys], ensure_ascii=False))
        return
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if key.revoked_at else "active"
        typer.echo(f"{key.name}\t{key.scope.value}\tcreated {key.created_at:%Y-%m-%dT%H:%M:%SZ}\t{state}")


@keys_app.command("revoke")
def keys_revoke(name: str) -> None:
    """Revoke an admin key: from the next call on, on every instance, it gets 401."""
    record = run(lambda s: s.keyring.revoke(name))
    typer.echo(f"revoked admin key {record.name}")


def _key_json(key: AdminKey) -> dict[str, object]:
    return {
        "name": key.name,
        "scope": key.scope.value,
        "createdAt": f"{key.created_at:%Y-%m-%dT%H:%M:%SZ}",
        "revokedAt": f"{key.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if key.revoked_at else None,
    }
