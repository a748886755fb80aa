"""Logging in and sessions over an in-memory store: what a caller of Authenticator can observe."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace

import pytest

from doorward.core import deps as deps_module
from doorward.core import sessions as sessions_module
from doorward.core.accounts import Accounts
from doorward.core.admin import Admin
from doorward.core.audit import Auditor
from doorward.core.deps import Deps
from doorward.core.errors import InvalidCredentials, InvalidSession, LoginRequestInvalid, Overloaded
from doorward.core.hashpool import HashPool
from doorward.core.models import NewUser
from doorward.core.sessions import Authenticator
from doorward.core.tokens import token_digest
from tests.conftest import EMAIL, PASSWORD, FakeClock
from tests.core.conftest import CLIENT, RecordingHasher
from tests.fakes import MemoryAuditSink, MemoryStore


async def test_register_then_login_then_check_then_logout(auth: Authenticator, accounts: Accounts) -> None:
    user = await accounts.register(" Ada@Example.com ", PASSWORD)
    assert user.email == "Ada@Example.com"
    assert user.email_canonical == "ada@example.com"

    result = await auth.login("ADA@example.COM", PASSWORD, CLIENT)
    assert result.user.id == user.id
    assert result.session.client_address == "192.0.2.1"

    checked_user, session = await auth.check(result.token)
    assert (checked_user.id, session.id) == (user.id, result.session.id)

    await auth.logout(result.token)
    with pytest.raises(InvalidSession):
        await auth.check(result.token)
    await auth.logout(result.token)  # idempotent


async def test_a_full_hash_pool_refuses_a_login_before_any_database_work(
    auth: Authenticator, accounts: Accounts, store: MemoryStore, pool: HashPool, hasher: RecordingHasher
) -> None:
    await accounts.register(EMAIL, PASSWORD)
    reads = store.reads
    with contextlib.ExitStack() as held:
        for _ in range(pool.capacity):
            held.enter_context(pool.slot())
        with pytest.raises(Overloaded):
            await auth.login(EMAIL, PASSWORD, CLIENT)
        assert (store.reads, hasher.verified) == (reads, [])
    assert (await auth.login(EMAIL, PASSWORD, CLIENT)).user.email == EMAIL  # the slots came back


async def test_every_login_gets_a_fresh_token(auth: Authenticator, accounts: Accounts) -> None:
    await accounts.register(EMAIL, PASSWORD)
    first = await auth.login(EMAIL, PASSWORD, CLIENT)
    second = await auth.login(EMAIL, PASSWORD, CLIENT)
    assert first.token != second.token
    assert first.session.id != second.session.id


async def test_only_the_token_digest_is_stored(
    auth: Authenticator, accounts: Accounts, store: MemoryStore
) -> None:
    await accounts.register(EMAIL, PASSWORD)
    result = await auth.login(EMAIL, PASSWORD, CLIENT)
    assert list(store.data.sessions) == [token_digest(result.token)]
    assert result.token not in repr(store.data)


async def test_unknown_email_spends_one_dummy_verification(
    auth: Authenticator, hasher: RecordingHasher
) -> None:
    with pytest.raises(InvalidCredentials):
        await auth.login("nobody@example.com", PASSWORD, CLIENT)
    assert hasher.verified == [None]


async def test_wrong_password_and_disabled_account_fail_alike(
    auth: Authenticator, accounts: Accounts, admin: Admin, hasher: RecordingHasher
) -> None:
    user = await accounts.register(EMAIL, PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        await auth.login(EMAIL, "not the password at all", CLIENT)
    await admin.disable_user(EMAIL)
    with pytest.raises(InvalidCredentials) as disabled:
        await auth.login(EMAIL, PASSWORD, CLIENT)  # the right password
    assert wrong.value.text == disabled.value.text == "Invalid credentials"
    assert hasher.verified == [user.password_hash, user.password_hash]


@pytest.mark.parametrize(
    ("email", "password"),
    [("", PASSWORD), ("   ", PASSWORD), (EMAIL, ""), ("a" * 250 + "@x.io", PASSWORD), (EMAIL, "\x00" * 20)],
)
async def test_unusable_login_input_is_the_seeds_400(auth: Authenticator, email: str, password: str) -> None:
    with pytest.raises(LoginRequestInvalid):
        await auth.login(email, password, CLIENT)


async def test_legacy_hash_is_upgraded_at_login(
    auth: Authenticator, store: MemoryStore, clock: FakeClock
) -> None:
    legacy = hashlib.sha256(PASSWORD.encode()).hexdigest()
    async with store.write() as tx:
        await tx.users.add(NewUser(EMAIL, EMAIL, legacy), clock())
    await auth.login(EMAIL, PASSWORD, CLIENT)
    upgraded = store.data.users[1].password_hash
    assert upgraded.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    await auth.login(EMAIL, PASSWORD, CLIENT)  # and the new hash verifies
    assert store.data.users[1].password_hash == upgraded  # no second rehash


async def test_session_expires_after_its_lifetime(
    auth: Authenticator, accounts: Accounts, clock: FakeClock
) -> None:
    await accounts.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    for _ in range(48):  # stay active, so only the absolute limit applies
        clock.advance(minutes=29, seconds=59)
        await auth.check(token)
        await auth.background.drain()  # the use is recorded behind the answer
    clock.advance(hours=1)
    with pytest.raises(InvalidSession):
        await auth.check(token)


async def test_idle_session_expires(auth: Authenticator, accounts: Accounts, clock: FakeClock) -> None:
    await accounts.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    clock.advance(minutes=30)
    with pytest.raises(InvalidSession):
        await auth.check(token)


async def test_last_seen_is_written_at_most_once_a_minute(
    auth: Authenticator, accounts: Accounts, store: MemoryStore, clock: FakeClock
) -> None:
    await accounts.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    await auth.background.drain()  # the login's own background write: its device (core/notices.py)
    writes = store.writes
    for _ in range(5):
        clock.advance(seconds=10)
        _, session = await auth.check(token)
        await auth.background.drain()
    assert store.writes == writes
    clock.advance(seconds=10)
    _, session = await auth.check(token)
    assert session.last_seen_at == clock()  # answered at once...
    await auth.background.drain()
    assert store.writes == writes + 1  # ...and written behind the answer
    found = await store.find_session(token_digest(token))
    assert found is not None and found[0].last_seen_at == clock()


@pytest.mark.parametrize("token", ["", "short", "x" * 43 + "!", "a" * 500])
async def test_malformed_tokens_are_invalid_without_a_lookup(auth: Authenticator, token: str) -> None:
    with pytest.raises(InvalidSession):
        await auth.check(token)
    await auth.logout(token)  # and logging out with one is harmless


async def test_a_login_in_flight_does_not_outlive_a_password_reset(
    auth: Authenticator, accounts: Accounts, store: MemoryStore
) -> None:
    user = await accounts.register(EMAIL, PASSWORD)
    assert user is not None

    def reset_meanwhile(data: object) -> None:  # commits between the login's check and its session
        store.data.users[user.id] = replace(store.data.users[user.id], password_hash="$argon2id$reset")

    store.before_next_write = reset_meanwhile
    with pytest.raises(InvalidCredentials):
        await auth.login(EMAIL, PASSWORD, CLIENT)
    assert store.data.sessions == {}


async def test_a_flood_of_refusals_is_audited_as_the_first_and_then_a_count(
    deps: Deps, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps_module, "REFUSAL_SUMMARY_SECONDS", 0.05)
    sink = MemoryAuditSink()
    full = replace(deps, pool=HashPool(deps.pool.hasher, workers=1, queue=0), audit=Auditor([sink], clock))
    with full.hash_slot():  # the one slot is taken: every other login is refused
        for _ in range(500):
            with pytest.raises(Overloaded):
                full.refuse_if_full()
        assert [(e.event, e.detail["refused"]) for e in sink.events] == [("overload.rejected", 1)]
        await full.background.drain()
        assert [(e.event, e.detail["refused"]) for e in sink.events] == [
            ("overload.rejected", 1),
            ("overload.rejected", 499),
        ]
        with pytest.raises(Overloaded):
            full.hash_slot()  # a refusal after the summary is audited at once again
    assert [e.detail["refused"] for e in sink.events] == [1, 499, 1]
    await full.background.drain()
    assert len(sink.events) == 3  # nothing more to sum up


async def test_a_use_not_recorded_is_not_reported_as_recorded(
    auth: Authenticator, accounts: Accounts, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_TOUCHES_IN_FLIGHT no write starts: the answer then gives the stored last use."""
    monkeypatch.setattr(sessions_module, "MAX_TOUCHES_IN_FLIGHT", 1)
    await accounts.register(EMAIL, PASSWORD)
    first, second = [(await auth.login(EMAIL, PASSWORD, CLIENT)).token for _ in range(2)]
    logged_in = clock()
    clock.advance(minutes=2)
    _, recorded = await auth.check(first)  # its write is now in flight, behind the answer
    _, skipped = await auth.check(second)  # none may start beside it
    assert recorded.last_seen_at == clock()
    assert skipped.last_seen_at == logged_in
    await auth.background.drain()
    _, later = await auth.check(second)  # the next check records it
    assert later.last_seen_at == clock()
