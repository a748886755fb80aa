"""What the operator reads: ``doorward users list``, ``users show`` and ``audit``, as text or --json.

Times are UTC. The JSON has the admin API's names and shapes (times to the second): an account as it
answers one, without "success"; lists as arrays of every page's items. The text is for a person and may
change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Annotated, Any

import typer

from doorward.cli.base import app, fail, run
from doorward.cli.base import users_app as users
from doorward.core.admin_json import account_json, event_json, optional_timestamp, user_summary
from doorward.core.admin_records import MAX_PAGE, AccountDetail, AuditEntry, AuditQuery, UserRef
from doorward.core.models import User
from doorward.wiring import Services

JSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _shown(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


def _echo_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@users.command("list")
def users_list(
    query: Annotated[str, typer.Option(help="Only emails that start with this.")] = "",
    as_json: JSON = False,
) -> None:
    """List accounts, oldest first: id, email, state, creation time."""

    async def every_page(services: Services) -> list[User]:
        found: list[User] = []
        cursor = None
        while True:
            page = await services.admin.list_users(query, limit=MAX_PAGE, cursor=cursor)
            found += page.users
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    found = run(every_page)
    if as_json:
        _echo_json([user_summary(user) for user in found])
        return
    for user in found:
        state = ", ".join(
            word
            for word, on in (
                ("disabled", user.disabled),
                ("unverified", user.email_verified_at is None),
                ("two-step", user.mfa_enabled),
            )
            if on
        )
        typer.echo(
            f"{user.id:>6}  {user.email}  created {_shown(user.created_at)}{f'  ({state})' if state else ''}"
        )
    if not found:
        typer.echo(f"no account{f' starting with {query!r}' if query else ''}", err=True)


def _account_json(detail: AccountDetail) -> dict[str, Any]:
    """What GET /admin/users/{id} answers, without "success"; and ``verifiedAt``."""
    summary = {**user_summary(detail.user), "verifiedAt": optional_timestamp(detail.user.email_verified_at)}
    return account_json(detail, summary)


def _lock_text(detail: AccountDetail) -> str:
    throttle = detail.throttle
    if throttle.locked:
        return f"yes: locked out after {throttle.failures} failed logins (doorward users unlock)"
    if throttle.wait_until is not None:
        return f"waiting until {_shown(throttle.wait_until)} after {throttle.failures} failed logins"
    return "no" if not throttle.failures else f"no ({throttle.failures} failed logins)"


@users.command("show")
def users_show(email: str, as_json: JSON = False) -> None:
    """Show an account: its state, second factors and live sessions."""
    detail = run(lambda s: s.admin.account(email))
    if as_json:
        _echo_json(_account_json(detail))
        return
    user, factors = detail.user, detail.factors
    verified = f"yes, {_shown(user.email_verified_at)}" if user.email_verified_at else "no"
    lines = [
        f"user {user.id} <{user.email}>",
        f"  created    {_shown(user.created_at)}",
        f"  verified   {verified}",
        f"  disabled   {'yes' if user.disabled else 'no'}",
        f"  locked     {_lock_text(detail)}",
        f"  app        {'yes' if factors.totp else 'no'}",
        f"  recovery   {factors.recovery_codes_left} code(s) left",
        f"  passkeys   {factors.passkeys}",
        f"  sessions   {len(detail.sessions)}",
    ]
    for s in detail.sessions:
        address = s.client_address or "unknown address"
        lines.append(
            f"    {s.id}  {s.device} from {address}; created {_shown(s.created_at)}, "
            f"last seen {_shown(s.last_seen_at)}, expires {_shown(s.expires_at)}"
        )
    typer.echo("\n".join(lines))


def _moment(text: str | None, option: str) -> datetime | None:
    """A day (2026-12-01: its midnight, UTC) or an ISO 8601 time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if len(text.strip()) == 10:
            moment = datetime.combine(moment.date(), time(0))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: before year 1 or after 9999 in UTC
        raise fail(
            f"{option}: not a date or time (e.g. 2026-12-01 or 2026-12-01T08:30:00Z): {text!r}"
        ) from None


def _entry_text(entry: AuditEntry) -> str:
    who = f"user {entry.user_id}" if entry.user_id is not None else "-"
    detail = " ".join(
        f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in entry.detail.items()
    )
    return "  ".join(
        part for part in (_shown(entry.at), entry.event, who, entry.client or "-", detail) if part
    )


@app.command("audit")
def audit(
    user: Annotated[
        str | None, typer.Option(help="Only this account's events: its email, or its id.")
    ] = None,
    event: Annotated[str | None, typer.Option(help="Only events of this name, e.g. login.failed.")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this day or time on (UTC), e.g. 2026-12-01.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this day or time (UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 100,
    as_json: JSON = False,
) -> None:
    """Print the audit trail, newest first.

    One event a line: time, name, account, client address, details. Events of a deleted account are
    found by its id. Events reach the database within a second of happening.
    """
    ref: UserRef | None = int(user) if user is not None and user.strip().isdigit() else user
    query = AuditQuery(
        user=ref, event=event, since=_moment(since, "--since"), until=_moment(until, "--until")
    )

    async def pages(services: Services) -> tuple[list[AuditEntry], bool]:
        found: list[AuditEntry] = []
        cursor = None
        while len(found) < limit:
            size = min(MAX_PAGE, limit - len(found))
            page = await services.admin.audit_events(
                AuditQuery(query.user, query.event, query.since, query.until, size, cursor)
            )
            found += page.events
            if page.next_cursor is None:
                return found, False
            cursor = page.next_cursor
        return found, True

    found, more = run(pages)
    if as_json:
        _echo_json([event_json(entry) for entry in found])
    else:
        for entry in found:
            typer.echo(_entry_text(entry))
        if not found:
            typer.echo("no event matches", err=True)
    if more:
        typer.echo(f"(the newest {limit} shown: --limit, --since or --until for others)", err=True)
