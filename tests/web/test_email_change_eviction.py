"""A pending change of email dies with the sessions that could have asked for it: after "log out
everywhere", an administrator's revoke of the account's sessions or an administrator's disable, the
link mailed to the new address no longer moves the account (as after a password reset or change,
tests/web/test_account_care.py). Both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EMAIL, PASSWORD, FakeClock, bearer, login, register
from tests.mailbox import link_token
from tests.web.admin import admin_app
from tests.web.test_account_care import change, mail_to, settle
from tests.web.test_passkeys import ORIGIN


@pytest.mark.parametrize("evicted_by", ["logout_all", "admin_revoke", "admin_disable"])
async def test_ending_every_session_voids_a_pending_change_of_email(
    database_url: str, clock: FakeClock, tmp_path: Path, evicted_by: str
) -> None:
    mail = tmp_path / "mail"
    async with admin_app(database_url, clock, base_url=ORIGIN, public_url=ORIGIN, mail_dir=mail) as admin:
        client = admin.client
        user_id = await register(client)
        intruder = await login(client)
        assert (await change(client, intruder, "mallory@example.com")).status_code == 202
        await settle(admin.app)
        confirm = link_token(mail_to(mail, "mallory@example.com", "Confirm your new email address"))

        if evicted_by == "logout_all":
            done = await client.post("/logout/all", headers=bearer(await login(client)))
        elif evicted_by == "admin_revoke":
            done = await admin.call("POST", f"/admin/users/{user_id}/sessions/revoke", admin.write)
        else:
            done = await admin.call("POST", f"/admin/users/{user_id}/disable", admin.write)
            assert (
                await admin.call("POST", f"/admin/users/{user_id}/enable", admin.write)
            ).status_code == 200
        assert done.status_code == 200, done.text
        assert (await client.get("/session", headers=bearer(intruder))).status_code == 401

        followed = await client.post("/email/change/confirm", json={"token": confirm})
        assert (followed.status_code, followed.json()["code"]) == (400, "token_invalid")
        assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 200
