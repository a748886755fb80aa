"""The account lifecycle over an in-memory store: what a caller of Accounts can observe."""

from __future__ import annotations

import pytest

from doorward.core.accounts import Accounts
from doorward.core.errors import EmailInvalid, EmailTaken, InvalidSession, PasswordCommon
from doorward.core.sessions import Authenticator
from tests.conftest import EMAIL, PASSWORD
from tests.core.conftest import CLIENT
from tests.fakes import MemoryStore


async def test_registration_rules(accounts: Accounts) -> None:
    await accounts.register(EMAIL, PASSWORD)
    with pytest.raises(EmailTaken):
        await accounts.register("ADA@example.com", "another fine passphrase")
    with pytest.raises(EmailInvalid):
        await accounts.register("not-an-email", PASSWORD)
    with pytest.raises(PasswordCommon):
        await accounts.register("bob@example.com", "password12345678")


async def test_a_password_change_loses_to_a_logout_everywhere(
    auth: Authenticator, accounts: Accounts, store: MemoryStore
) -> None:
    await accounts.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    user, session = await auth.check(token)
    store.before_next_write = lambda data: store.data.sessions.clear()
    with pytest.raises(InvalidSession):
        await accounts.change_password(user, session, PASSWORD, "a brand new passphrase here", CLIENT)
    assert store.data.users[user.id].password_hash == user.password_hash
