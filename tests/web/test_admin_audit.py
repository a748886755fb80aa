"""``GET /admin/audit`` on both databases: the filters as an operator writes them (an id or an email, an
event's name, a date or a time), newest first, and every event once across the pages."""

from __future__ import annotations

import base64

from tests.conftest import EMAIL, FakeClock, login, register
from tests.web.admin import admin_app


async def test_the_audit_trail_filters_and_pages_newest_first(database_url: str, clock: FakeClock) -> None:
    async with admin_app(database_url, clock) as admin:
        ada = await register(admin.client)
        clock.advance(days=1)  # 2026-01-02 12:00
        grace = await register(admin.client, "grace@example.com")
        for _ in range(3):
            await login(admin.client)
            clock.advance(minutes=1)
        clock.advance(days=1)  # 2026-01-03
        await login(admin.client, "grace@example.com")

        every = await admin.events()
        assert [e["at"] for e in every] == sorted((e["at"] for e in every), reverse=True)
        ids = [e["id"] for e in every]
        assert len(ids) == len(set(ids))

        by_id = await admin.events(user=str(ada))
        by_email = await admin.events(user=" ADA@example.com ")
        assert by_id == by_email
        assert {e["userId"] for e in by_id} == {ada}
        assert [e["event"] for e in by_id if e["event"].startswith("login")] == ["login.succeeded"] * 3
        assert {e["clientAddress"] for e in by_id if e["event"] == "login.succeeded"} == {"127.0.0.1"}

        logins = await admin.events(event="login.succeeded")
        assert [e["userId"] for e in logins] == [grace, ada, ada, ada]
        on_the_2nd = await admin.events(event="login.succeeded", since="2026-01-02", until="2026-01-03")
        assert [e["userId"] for e in on_the_2nd] == [ada] * 3
        from_a_time = await admin.events(
            event="login.succeeded", since="2026-01-02T12:01:00Z", until="2026-01-02T13:02:30+01:00"
        )
        assert len(from_a_time) == 2  # 12:01 and 12:02 UTC: 13:02:30+01:00 is 12:02:30 UTC
        naive = await admin.events(event="login.succeeded", since="2026-01-02T12:01:00")
        assert len(naive) == 3  # UTC when no offset is given: 12:01, 12:02 and grace's on the 3rd

        pages, cursor = [], None
        while True:
            params = {"event": "login.succeeded", "limit": "1", **({"cursor": cursor} if cursor else {})}
            page = await admin.call("GET", "/admin/audit", admin.read, params=params)
            assert page.status_code == 200
            pages.append(page.json()["events"])
            cursor = page.json()["nextCursor"]
            if cursor is None:
                break
        assert [p[0] for p in pages] == logins

        for params, status, code in (
            ({"user": "nobody@example.com"}, 404, "user_not_found"),
            ({"since": "yesterday"}, 400, "invalid_request"),
            ({"until": "2026-13-01"}, 400, "invalid_request"),
            ({"cursor": "bm90IGEgY3Vyc29y"}, 400, "cursor_invalid"),
            ({"limit": "0"}, 400, "invalid_request"),
            ({"event": "x" * 65}, 400, "invalid_request"),
        ):
            refused = await admin.call("GET", "/admin/audit", admin.read, params=params)
            assert (refused.status_code, refused.json()["code"]) == (status, code), params
        assert await admin.events(user="999999") == []  # an id names a deleted account too: no 404
        assert EMAIL not in str(every)  # events carry ids, never emails


async def test_nul_in_a_parameter_is_a_400_not_a_500(database_url: str) -> None:
    """PostgreSQL refuses NUL in text with an error that is no outage: it must not reach the database."""
    async with admin_app(database_url) as admin:
        await register(admin.client)
        for path, params in (
            ("/admin/users", {"query": "ada\x00"}),
            ("/admin/users", {"cursor": "\x00"}),
            ("/admin/audit", {"user": "ada\x00@example.com"}),
            ("/admin/audit", {"event": "login.failed\x00"}),
            ("/admin/audit", {"since": "2026-01-01\x00"}),
        ):
            refused = await admin.call("GET", path, admin.read, params=params)
            assert (refused.status_code, refused.json()["code"]) == (400, "invalid_request"), params


async def test_an_id_beyond_32_bits_finds_no_events_rather_than_a_500(database_url: str) -> None:
    """Ids are 32-bit on PostgreSQL: a ten-digit ``user=`` past 2**31 - 1 names nobody, as a deleted
    account's id does, and must not reach the driver (which refuses it: a 500)."""
    async with admin_app(database_url) as admin:
        await register(admin.client)
        for user in ("2147483648", "9999999999"):
            found = await admin.call("GET", "/admin/audit", admin.read, params={"user": user})
            assert (found.status_code, found.json()["events"]) == (200, []), user


def _forged(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_forged_cursors_and_times_past_the_calendar_are_400s(database_url: str) -> None:
    """A cursor is opaque but only base64: one naming an id past 32 bits reached PostgreSQL (a 500),
    and a time that UTC puts before year 1 or after 9999 overflowed in Python (a 500 on both)."""
    async with admin_app(database_url) as admin:
        for path, cursor in (
            ("/admin/users", _forged("u:9999999999")),
            ("/admin/audit", _forged("a:2026-01-01T00:00:00+00:00|9999999999")),
            ("/admin/audit", _forged("a:0001-01-01T00:00:00+14:00|1")),
        ):
            refused = await admin.call("GET", path, admin.read, params={"cursor": cursor})
            assert (refused.status_code, refused.json()["code"]) == (400, "cursor_invalid"), cursor
        for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            for name in ("since", "until"):
                refused = await admin.call("GET", "/admin/audit", admin.read, params={name: moment})
                assert (refused.status_code, refused.json()["code"]) == (400, "invalid_request"), moment
