"""What each admin API call does to an account, seen as its user and an operator would see it, on both
databases: the search's pages, an account's detail, disable and enable, unlock, ending sessions,
resetting the second factors, the reset mail, deletion, and the import's all-or-nothing rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EMAIL, PASSWORD, FakeClock, bearer, login, register
from tests.db import fetch
from tests.web.admin import AdminApp, admin_app
from tests.web.test_mfa import enrol, mails_in, password_step

SHA_LINE = "sha@example.com,c4bbcb1fbec99d65bf59d85c8cb62ee2db963f0fe106f483d9afa73bd4e39a8a"
"""An imported bare SHA-256 of the password 'correct horse battery staple'."""
CSV = {"Content-Type": "text/csv"}


async def test_search_pages_through_accounts_by_email_prefix(database_url: str) -> None:
    async with admin_app(database_url) as admin:
        ids = [await register(admin.client, f"ada{n}@example.com") for n in range(5)]
        await register(admin.client, "grace@example.com")
        first = await admin.call("GET", "/admin/users", admin.read, params={"query": " ADA", "limit": 2})
        assert first.status_code == 200
        body = first.json()
        assert [u["id"] for u in body["users"]] == ids[:2]
        assert body["users"][0] == {
            "id": ids[0],
            "email": "ada0@example.com",
            "createdAt": "2026-01-01T12:00:00Z",
            "disabled": False,
            "verified": False,
            "mfaEnabled": False,
        }
        seen = [u["id"] for u in body["users"]]
        cursor = body["nextCursor"]
        while cursor is not None:
            page = await admin.call(
                "GET", "/admin/users", admin.read, params={"query": "ada", "limit": 2, "cursor": cursor}
            )
            seen += [u["id"] for u in page.json()["users"]]
            cursor = page.json()["nextCursor"]
        assert seen == ids
        everyone = await admin.call("GET", "/admin/users", admin.read)
        assert len(everyone.json()["users"]) == 6 and everyone.json()["nextCursor"] is None

        for params, code in (
            ({"cursor": "not-a-cursor"}, "cursor_invalid"),
            ({"limit": "0"}, "invalid_request"),
            ({"limit": "201"}, "invalid_request"),
            ({"limit": "many"}, "invalid_request"),
            ({"query": "x" * 321}, "invalid_request"),
        ):
            refused = await admin.call("GET", "/admin/users", admin.read, params=params)
            assert (refused.status_code, refused.json()["code"]) == (400, code), params


async def test_an_accounts_detail_shows_its_state_factors_and_live_sessions(
    database_url: str, clock: FakeClock
) -> None:
    async with admin_app(database_url, clock, throttle_free_failures=1) as admin:
        enrolled = await enrol(admin.client, clock)
        (user,) = (await admin.call("GET", "/admin/users", admin.read)).json()["users"]
        await admin.client.post("/login", json={"email": EMAIL, "password": "not the password at all"})
        shown = await admin.call(
            "GET", f"/admin/users/{user['id']}", admin.read, headers={"User-Agent": "curl/8.0"}
        )
        assert shown.status_code == 200
        body = shown.json()
        assert body["user"] == {
            **user,
            "mfaEnabled": True,
            "locked": True,
            "failedLogins": 1,
            "lockedOut": False,
            "retryAt": "2026-01-01T12:00:31Z",
            "factors": {"totp": True, "recoveryCodesLeft": 10, "passkeys": 0},
        }
        (session,) = body["sessions"]
        assert set(session) == {
            "id",
            "createdAt",
            "lastSeenAt",
            "expiresAt",
            "clientAddress",
            "userAgent",
            "device",
            "aal",
            "amr",
        }
        assert (session["clientAddress"], session["aal"], session["amr"]) == ("127.0.0.1", 1, ["pwd"])
        listed = (await admin.client.get("/sessions", headers=bearer(enrolled.session))).json()["sessions"]
        assert [s["id"] for s in listed] == [session["id"]]
        assert enrolled.secret not in shown.text

        for path, status in (("999", 404), ("0", 400), ("-1", 400), ("abc", 400), ("2147483648", 400)):
            missing = await admin.call("GET", f"/admin/users/{path}", admin.read)
            assert missing.status_code == status, path
        assert missing.json()["code"] == "invalid_request"


async def test_disable_ends_sessions_and_logins_until_enabled(database_url: str) -> None:
    async with admin_app(database_url) as admin:
        user_id = await register(admin.client)
        token = await login(admin.client)
        disabled = await admin.call("POST", f"/admin/users/{user_id}/disable", admin.write)
        assert disabled.json() == {"success": True, "ended": 1}
        assert (await admin.client.get("/session", headers=bearer(token))).status_code == 401
        refused = await admin.client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        assert refused.status_code == 401
        assert (await admin.call("GET", f"/admin/users/{user_id}", admin.read)).json()["user"]["disabled"]

        assert (await admin.call("POST", f"/admin/users/{user_id}/enable", admin.write)).json() == {
            "success": True
        }
        assert (
            await admin.client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        ).status_code == 200
        for action in ("disable", "enable", "unlock", "sessions/revoke", "mfa/reset", "password/reset"):
            missing = await admin.call("POST", f"/admin/users/999/{action}", admin.write)
            assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found"), action


async def test_unlock_lifts_a_lockout(database_url: str, clock: FakeClock) -> None:
    async with admin_app(database_url, clock, throttle_lockout_failures=2) as admin:
        user_id = await register(admin.client)
        for _ in range(2):
            await admin.client.post("/login", json={"email": EMAIL, "password": "not the password at all"})
        assert (
            await admin.client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        ).status_code == 429
        assert (await admin.call("GET", f"/admin/users/{user_id}", admin.read)).json()["user"]["lockedOut"]
        assert (await admin.call("POST", f"/admin/users/{user_id}/unlock", admin.write)).status_code == 200
        assert (
            await admin.client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        ).status_code == 200


async def test_revoking_sessions_ends_every_one(database_url: str) -> None:
    async with admin_app(database_url) as admin:
        user_id = await register(admin.client)
        tokens = [await login(admin.client) for _ in range(3)]
        revoked = await admin.call("POST", f"/admin/users/{user_id}/sessions/revoke", admin.write)
        assert revoked.json() == {"success": True, "ended": 3}
        for token in tokens:
            assert (await admin.client.get("/session", headers=bearer(token))).status_code == 401
        assert (await admin.call("GET", f"/admin/users/{user_id}", admin.read)).json()["sessions"] == []


async def test_mfa_reset_lets_the_password_log_in_alone_and_mails_the_user(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    async with admin_app(database_url, clock, mail_dir=mail) as admin:
        enrolled = await enrol(admin.client, clock)
        await password_step(admin.client)  # the password alone opens no session
        (user,) = (await admin.call("GET", "/admin/users", admin.read)).json()["users"]
        reset = await admin.call("POST", f"/admin/users/{user['id']}/mfa/reset", admin.write)
        assert reset.json() == {"success": True, "ended": 1}
        assert (await admin.client.get("/session", headers=bearer(enrolled.session))).status_code == 401
        await login(admin.client)
        again = await admin.call("POST", f"/admin/users/{user['id']}/mfa/reset", admin.write)
        assert (again.status_code, again.json()["code"]) == (409, "mfa_not_enabled")
        await admin.app.state.services.outbox.drain()
    assert "Two-step verification was reset by an administrator" in mails_in(mail)


async def test_password_reset_mails_the_users_own_link(database_url: str, tmp_path: Path) -> None:
    mail = tmp_path / "mail"
    async with admin_app(database_url, mail_dir=mail) as admin:
        user_id = await register(admin.client)
        sent = await admin.call("POST", f"/admin/users/{user_id}/password/reset", admin.write)
        assert sent.json() == {"success": True}
        await admin.app.state.services.outbox.drain()
        (text,) = mails_in(mail).values()
        token = text.split("token=", 1)[1].split()[0]
        confirmed = await admin.client.post(
            "/password/reset/confirm", json={"token": token, "newPassword": "a brand new passphrase for ada"}
        )
        assert confirmed.status_code == 200, confirmed.text

        await admin.call("POST", f"/admin/users/{user_id}/disable", admin.write)
        refused = await admin.call("POST", f"/admin/users/{user_id}/password/reset", admin.write)
        assert (refused.status_code, refused.json()["code"]) == (400, "account_disabled")


async def test_delete_removes_the_account_and_the_audit_keeps_its_id(database_url: str) -> None:
    async with admin_app(database_url) as admin:
        user_id = await register(admin.client)
        token = await login(admin.client)
        deleted = await admin.call("DELETE", f"/admin/users/{user_id}", admin.write)
        assert deleted.json() == {"success": True, "ended": 1}
        assert (await admin.client.get("/session", headers=bearer(token))).status_code == 401
        assert (await admin.call("GET", f"/admin/users/{user_id}", admin.read)).status_code == 404
        assert (await admin.call("DELETE", f"/admin/users/{user_id}", admin.write)).status_code == 404
        assert await fetch(database_url, "SELECT id FROM users") == []
        (event,) = await admin.events(event="user.deleted", user=str(user_id))
        assert (event["detail"]["key"], event["detail"]["by"]) == ("ops", "admin")
        assert EMAIL not in str(event)


async def import_csv(admin: AdminApp, body: bytes, **params: str) -> tuple[int, dict[str, object]]:
    answer = await admin.call(
        "POST", "/admin/users/import", admin.write, content=body, headers=CSV, params=params
    )
    return answer.status_code, answer.json()


async def test_import_takes_the_clis_csv_all_or_nothing(database_url: str) -> None:
    async with admin_app(database_url) as admin:
        await register(admin.client)
        good = f"email,password_hash\n{SHA_LINE}\n".encode()
        refused = f"email,password_hash\n{SHA_LINE}\n{EMAIL},{'0' * 64}\nbad,xyz\n".encode()
        assert await import_csv(admin, refused) == (
            400,
            {
                "success": False,
                "error": "2 line(s) refused; nothing imported",
                "code": "import_refused",
                "skipped": [
                    {"line": 3, "reason": "An account with this email already exists"},
                    {"line": 4, "reason": "Email address is not valid"},
                ],
            },
        )
        assert len(await fetch(database_url, "SELECT id FROM users")) == 1
        status, body = await import_csv(admin, refused, skipInvalid="true")
        assert (status, body["imported"], len(body["skipped"])) == (200, 1, 2)  # type: ignore[arg-type]
        assert (
            await admin.client.post("/login", json={"email": "sha@example.com", "password": PASSWORD})
        ).status_code == 200
        assert await import_csv(admin, good) == (
            400,
            {
                "success": False,
                "error": "1 line(s) refused; nothing imported",
                "code": "import_refused",
                "skipped": [{"line": 2, "reason": "An account with this email already exists"}],
            },
        )
        (event,) = [e for e in await admin.events(event="admin.users_imported") if e["detail"]["imported"]]
        assert event["detail"]["key"] == "ops"


@pytest.mark.parametrize(
    "stored",
    [
        "pbkdf2_sha256$600000$sa\x00lt$" + "A" * 43 + "=",
        "$2b$12$" + "a" * 22 + "\x00" + "b" * 30,
    ],
    ids=["pbkdf2", "bcrypt"],
)
async def test_an_imported_hash_with_a_nul_is_a_refused_line_not_a_500(
    database_url: str, stored: str
) -> None:
    """No hash format has a NUL (or any control character); PostgreSQL takes none in text, and the
    insert failed as a 500 after every line had been accepted."""
    async with admin_app(database_url) as admin:
        status, body = await import_csv(admin, f"email,password_hash\nx@example.com,{stored}\n".encode())
        assert (status, body["code"], len(body["skipped"])) == (400, "import_refused", 1)  # type: ignore[arg-type]
    assert await fetch(database_url, "SELECT id FROM users") == []


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"email,password_hash\n", {"Content-Type": "application/json"}, 400),
        (b"mail,hash\na,b\n", CSV, 400),
        (b"email,password_hash\n\xff\xfe,x\n", CSV, 400),
        (b"email,password_hash\n" + b"a@example.com,x\n" * 5000, CSV, 413),
    ],
    ids=["not CSV", "wrong header", "not UTF-8", "too large"],
)
async def test_an_import_that_is_no_import_file_is_refused(
    database_url: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    async with admin_app(database_url) as admin:
        answer = await admin.call("POST", "/admin/users/import", admin.write, content=body, headers=headers)
        assert answer.status_code == status, answer.text
        assert answer.json()["success"] is False
    assert await fetch(database_url, "SELECT id FROM users") == []
