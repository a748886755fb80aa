"""``doorward audit`` (filters, newest first, --limit, --json) and ``doorward prune``'s audit retention
(DOORWARD_AUDIT_RETENTION), through the CLI runner on both databases."""

from __future__ import annotations

import json

import httpx

from tests.cli.conftest import add_user, api, assert_one_line_error, human_lines, invoke, query
from tests.conftest import EMAIL, PASSWORD


def logins(database_url: str, *passwords: str, email: str = EMAIL) -> None:
    async def action(client: httpx.AsyncClient) -> None:
        for password in passwords:
            await client.post("/login", json={"email": email, "password": password})

    api(database_url, action)


def events_of(stdout: str) -> list[str]:
    return [line.split("  ")[1] for line in stdout.splitlines()]


def test_audit_lists_events_newest_first_with_filters(database_url: str) -> None:
    add_user(database_url)
    add_user(database_url, "grace@example.com")
    logins(database_url, "a wrong password, twenty", PASSWORD)
    logins(database_url, PASSWORD, email="grace@example.com")

    everything = invoke(database_url, "audit")
    assert everything.exit_code == 0, everything.output
    assert events_of(everything.stdout) == [
        "login.succeeded",
        "login.succeeded",
        "login.failed",
        "admin.user_added",
        "user.registered",
        "admin.user_added",
        "user.registered",
    ]
    failed = everything.stdout.splitlines()[2].split("  ")
    assert failed[0].endswith(" UTC") and failed[2:] == ["user 1", "127.0.0.1", 'reason="wrong_password"']

    mine = invoke(database_url, "audit", "--user", EMAIL.upper(), "--event", "login.succeeded", "--json")
    assert mine.exit_code == 0, mine.output
    (event,) = json.loads(mine.stdout)
    assert (event["event"], event["userId"]) == ("login.succeeded", 1)
    assert set(event) == {"id", "at", "event", "userId", "clientAddress", "detail"}
    assert "session_id" in event["detail"]
    by_id = invoke(database_url, "audit", "--user", "2", "--event", "login.succeeded", "--json")
    assert [e["userId"] for e in json.loads(by_id.stdout)] == [2]

    limited = invoke(database_url, "audit", "--limit", "2")
    assert events_of(limited.stdout) == ["login.succeeded", "login.succeeded"]
    assert human_lines(limited.stderr) == ["(the newest 2 shown: --limit, --since or --until for others)"]

    assert invoke(database_url, "audit", "--since", "2999-01-01").stdout == ""
    assert len(events_of(invoke(database_url, "audit", "--until", "2999-01-01T00:00:00Z").stdout)) == 7
    assert invoke(database_url, "audit", "--until", "2000-01-01").stdout == ""
    assert_one_line_error(invoke(database_url, "audit", "--since", "yesterday"), "--since", "not a date")
    for option, moment in [
        ("--since", "0001-01-01T00:00:00+14:00"),
        ("--until", "9999-12-31T23:59:59-14:00"),
    ]:
        # A time UTC puts before year 1 or after 9999: an error like any bad time, not a traceback.
        off_calendar = invoke(database_url, "audit", option, moment)
        assert off_calendar.exit_code == 1 and not isinstance(off_calendar.exception, OverflowError)
        assert_one_line_error(off_calendar, option, "not a date")
    assert_one_line_error(invoke(database_url, "audit", "--user", "nobody@example.com"), "No account")


def test_prune_removes_audit_events_older_than_the_retention(database_url: str) -> None:
    add_user(database_url)
    query(database_url, "UPDATE audit_events SET at = '2020-01-01 00:00:00'")  # long past any retention
    kept = invoke(database_url, "prune", audit_retention="")
    assert kept.exit_code == 0, kept.output
    assert kept.stdout.rstrip().endswith("audit events: 0")

    pruned = invoke(database_url, "prune")
    assert pruned.stdout.rstrip().endswith("audit events: 2"), pruned.stdout
    assert events_of(invoke(database_url, "audit").stdout) == ["admin.pruned", "admin.pruned"]

    recent = invoke(database_url, "prune", audit_retention="P1D")
    assert recent.stdout.rstrip().endswith("audit events: 0")
    assert_one_line_error(invoke(database_url, "prune", audit_retention="-5"), "DOORWARD_AUDIT_RETENTION")
