"""The administrator's reads and the actions the admin API shares with the CLI, through the real
services on both databases: the account search and its pages, one account's detail, enabling, the
reset mail, and the audit query's filters and pages; prune's audit retention."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from doorward.core.admin_records import AccountDisabled, Actor, AuditQuery, CursorInvalid
from doorward.core.errors import InvalidRequest, UserNotFound
from doorward.wiring import Services
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.db import fetch
from tests.web.test_mfa_services import enrol, services_of

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


async def test_the_search_pages_through_a_prefix_of_the_canonical_email(
    database_url: str, clock: FakeClock
) -> None:
    async with app_for(database_url, clock) as (app, client):
        emails = [f"User{n}@Example.com" for n in range(5)] + ["user_x@example.com", "userAx@example.com"]
        ids = [await register(client, email) for email in emails]
        await register(client, "someone@example.com")
        admin = services_of(app).admin

        seen, cursor, pages = [], None, 0
        while True:
            page = await admin.list_users(" USER", limit=3, cursor=cursor)
            seen += [user.id for user in page.users]
            pages += 1
            if page.next_cursor is None:
                break
            assert "user" not in page.next_cursor.lower() and "@" not in page.next_cursor
            cursor = page.next_cursor
        assert (seen, pages) == (ids, 3)
        assert [u.email for u in (await admin.list_users("user0")).users] == ["User0@Example.com"]
        # Wildcards are letters like others: "_" matches only "_", "%" nothing here.
        assert [u.email for u in (await admin.list_users("user_")).users] == ["user_x@example.com"]
        assert (await admin.list_users("user%")).users == []
        assert len((await admin.list_users("", limit=200)).users) == 8
        for limit in (0, 201):
            with pytest.raises(InvalidRequest):
                await admin.list_users("", limit=limit)
        for cursor in ("nonsense", "dTp4", "YToxfDI", "dTo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"):
            with pytest.raises(CursorInvalid):
                await admin.list_users("", cursor=cursor)


async def test_an_accounts_detail_shows_its_state_factors_and_live_sessions(
    database_url: str, clock: FakeClock
) -> None:
    async with app_for(database_url, clock, session_idle_timeout=3600) as (app, client):
        user_id = await register(client)
        old = await login(client)
        clock.advance(minutes=61)  # the first session is idle past the timeout now
        response = await client.post(
            "/login", json={"email": EMAIL, "password": PASSWORD}, headers={"User-Agent": CHROME}
        )
        current = response.json()["sessionToken"]
        services = services_of(app)
        admin = services.admin

        detail = await admin.account(user_id)
        assert detail == await admin.account(EMAIL.upper())
        assert (detail.user.email, detail.verified, detail.locked, detail.user.disabled) == (
            EMAIL,
            False,  # registered through the API, not confirmed by mail
            False,
            False,
        )
        assert (detail.factors.totp, detail.factors.recovery_codes_left, detail.factors.passkeys) == (
            False,
            0,
            0,
        )
        (session,) = detail.sessions
        assert (session.device, session.created_at, session.aal, session.amr) == (
            "Chrome on Linux",
            clock(),
            1,
            ("pwd",),
        )
        assert (await client.get("/session", headers=bearer(old))).status_code == 401
        assert (await client.get("/session", headers=bearer(current))).status_code == 200

        _, codes = await enrol(services.mfa, detail.user, clock())
        for _ in range(services.settings.throttle_free_failures):
            await client.post("/login", json={"email": EMAIL, "password": "a wrong password, twenty"})
        detail = await admin.account(user_id)
        assert (detail.factors.totp, detail.factors.recovery_codes_left) == (True, len(codes))
        assert detail.locked and not detail.throttle.locked
        assert detail.throttle.failures == services.settings.throttle_free_failures
        assert detail.throttle.wait_until is not None and detail.throttle.wait_until > clock()
        await admin.unlock_user(user_id)
        assert not (await admin.account(user_id)).locked

        for missing in (user_id + 1, 2**31, -1, "nobody@example.com"):
            with pytest.raises(UserNotFound):
                await admin.account(missing)


async def test_enable_undoes_disable_and_the_reset_mail_goes_to_the_stored_address(
    database_url: str, clock: FakeClock, tmp_path: object
) -> None:
    async with app_for(database_url, clock, mail_dir=tmp_path) as (app, client):
        user_id = await register(client, "Ada@Example.com")
        admin = services_of(app).admin
        assert await admin.disable_user(user_id) == 0
        with pytest.raises(AccountDisabled):
            await admin.send_password_reset(user_id)
        login_as = {"email": "ada@example.com", "password": PASSWORD}
        assert (await client.post("/login", json=login_as)).status_code == 401
        assert (
            await admin.enable_user("ADA@example.com", Actor("api", "ops", "192.0.2.3"))
        ).disabled is False
        assert (await client.post("/login", json=login_as)).status_code == 200

        user = await admin.send_password_reset(user_id)
        await services_of(app).outbox.drain()
        assert user.email == "Ada@Example.com"
        mails = await fetch(database_url, "SELECT count(*) FROM account_tokens WHERE purpose = 'reset'")
        assert mails == [(1,)]
        (mail,) = [path for path in tmp_path.iterdir() if path.suffix == ".eml"]  # type: ignore[attr-defined]
        text = mail.read_text()
        assert "To: Ada@Example.com" in text
        assert "/password/reset?token=" in text.replace("=\n", "")


async def audited(client: httpx.AsyncClient, services: Services, clock: FakeClock, *logins: str) -> None:
    """A login per entry of ``logins`` (EMAIL with the right password, or "wrong"), a minute apart."""
    for what in logins:
        password = PASSWORD if what == "right" else "a wrong password, twenty"
        await client.post("/login", json={"email": EMAIL, "password": password})
        clock.advance(minutes=1)
    await services.audit_sink.flush()


async def test_the_audit_query_filters_and_pages_newest_first(database_url: str, clock: FakeClock) -> None:
    async with app_for(database_url, clock) as (app, client):
        await register(client)
        other = await register(client, "grace@example.com")
        services = services_of(app)
        await services.audit_sink.flush()
        start = clock()
        clock.advance(minutes=1)
        ada = (await services.admin.find_user(EMAIL)).id
        await audited(client, services, clock, *["wrong", "right"] * 3)
        response = await client.post("/login", json={"email": "grace@example.com", "password": PASSWORD})
        assert response.status_code == 200
        clock.advance(minutes=1)
        await services.admin.prune()
        await services.audit_sink.flush()
        admin = services.admin

        everything = (await admin.audit_events(AuditQuery(limit=200))).events
        assert [(e.event, e.user_id) for e in everything[:2]] == [
            ("admin.pruned", None),
            ("login.succeeded", other),
        ]
        assert [e.at for e in everything] == sorted((e.at for e in everything), reverse=True)

        names, cursor = [], None
        while True:
            page = await admin.audit_events(AuditQuery(user=EMAIL.upper(), limit=4, cursor=cursor))
            names += [(e.event, e.user_id) for e in page.events]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert names[:6] == [("login.succeeded", ada), ("login.failed", ada)] * 3
        assert names[6:] == [("user.registered", ada)]

        succeeded = await admin.audit_events(AuditQuery(user=ada, event="login.succeeded"))
        assert len(succeeded.events) == 3 and succeeded.next_cursor is None
        window = await admin.audit_events(
            AuditQuery(since=start + timedelta(minutes=2), until=start + timedelta(minutes=4))
        )
        assert [e.at for e in window.events] == [start + timedelta(minutes=3), start + timedelta(minutes=2)]
        with pytest.raises(UserNotFound):
            await admin.audit_events(AuditQuery(user="nobody@example.com"))
        with pytest.raises(CursorInvalid):
            await admin.audit_events(AuditQuery(cursor=(await admin.list_users("", limit=1)).next_cursor))


async def test_prune_deletes_audit_events_past_the_retention_only(
    database_url: str, clock: FakeClock
) -> None:
    async with app_for(database_url, clock, audit_retention=timedelta(days=30)) as (app, client):
        await register(client)
        services = services_of(app)
        await services.audit_sink.flush()
        clock.advance(days=30, seconds=1)
        await audited(client, services, clock, "wrong")
        assert (await services.admin.prune())["audit_events"] == 1
        await services.audit_sink.flush()
        left = [e.event for e in (await services.admin.audit_events(AuditQuery())).events]
        assert left == ["admin.pruned", "login.failed"]
    async with app_for(database_url, clock, audit_retention="") as (app, _):
        clock.advance(days=3650)
        assert (await services_of(app).admin.prune())["audit_events"] == 0
