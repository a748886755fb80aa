"""The administrator's actions over an in-memory store: what a caller of Admin can observe."""

from __future__ import annotations

import hashlib

import pytest

from doorward.core.accounts import Accounts
from doorward.core.admin import Admin, ImportRow
from doorward.core.errors import InvalidSession, UserNotFound
from doorward.core.sessions import Authenticator
from tests.conftest import EMAIL, PASSWORD
from tests.core.conftest import CLIENT
from tests.fakes import MemoryStore


async def test_disable_and_revoke_end_every_session(
    auth: Authenticator, accounts: Accounts, admin: Admin
) -> None:
    await accounts.register(EMAIL, PASSWORD)
    tokens = [(await auth.login(EMAIL, PASSWORD, CLIENT)).token for _ in range(3)]
    assert await admin.revoke_sessions(EMAIL) == 3
    for token in tokens:
        with pytest.raises(InvalidSession):
            await auth.check(token)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    assert await admin.disable_user(EMAIL) == 1
    with pytest.raises(InvalidSession):
        await auth.check(token)
    with pytest.raises(UserNotFound):
        await admin.revoke_sessions("nobody@example.com")


async def test_import_is_all_or_nothing(auth: Authenticator, admin: Admin, store: MemoryStore) -> None:
    sha = hashlib.sha256(PASSWORD.encode()).hexdigest()
    rows = [
        ImportRow(2, "one@example.com", sha),
        ImportRow(3, "two@example.com", "md5:nope"),
        ImportRow(4, "ONE@example.com", sha),
        ImportRow(5, "bad email", sha),
    ]
    report = await admin.import_users(rows, skip_invalid=False)
    assert report.imported == 0
    assert [line for line, _ in report.skipped] == [3, 4, 5]
    assert store.data.users == {}

    report = await admin.import_users(rows, skip_invalid=True)
    assert report.imported == 1
    assert (await auth.login("one@example.com", PASSWORD, CLIENT)).user.email == "one@example.com"
