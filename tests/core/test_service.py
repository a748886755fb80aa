"""The use cases over an in-memory store: what a caller of the core can observe."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest

from doorward.core import (
    Auditor,
    Authenticator,
    Client,
    HashPool,
    ImportRow,
    Password,
    PasswordHasher,
    PasswordPolicy,
    SessionPolicy,
    Throttle,
    ThrottlePolicy,
    Verdict,
)
from doorward.core.errors import (
    EmailInvalid,
    EmailTaken,
    InvalidCredentials,
    InvalidSession,
    LoginRequestInvalid,
    Overloaded,
    PasswordCommon,
    UserNotFound,
)
from doorward.core.models import NewUser
from doorward.core.profiles import TESTING
from doorward.core.tokens import token_digest
from tests.conftest import EMAIL, PASSWORD, FakeClock
from tests.fakes import MemoryAuditSink, MemoryStore, MemoryThrottleStore, RecordingNotifications

CLIENT = Client(address="192.0.2.1", user_agent="pytest")


class RecordingHasher(PasswordHasher):
    """The real hasher, remembering which stored hashes it was asked to verify."""

    def __init__(self) -> None:
        super().__init__(TESTING, b"k" * 32)
        self.verified: list[str | None] = []

    def verify(self, stored: str | None, password: Password) -> Verdict:
        self.verified.append(stored)
        return super().verify(stored, password)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def hasher() -> RecordingHasher:
    return RecordingHasher()


@pytest.fixture
def pool() -> HashPool:
    return HashPool(workers=1, queue=8)


@pytest.fixture
def auth(store: MemoryStore, hasher: RecordingHasher, pool: HashPool, clock: FakeClock) -> Authenticator:
    audit = Auditor([MemoryAuditSink()], clock)
    return Authenticator(
        store=store,
        hasher=hasher,
        pool=pool,
        password_policy=PasswordPolicy(),
        session_policy=SessionPolicy(lifetime=timedelta(hours=24), idle_timeout=timedelta(minutes=30)),
        throttle=Throttle(MemoryThrottleStore(), ThrottlePolicy(), clock, audit),
        audit=audit,
        notifications=RecordingNotifications(),
        clock=clock,
    )


async def test_register_then_login_then_check_then_logout(auth: Authenticator) -> None:
    user = await auth.register(" Ada@Example.com ", PASSWORD)
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
    auth: Authenticator, store: MemoryStore, pool: HashPool, hasher: RecordingHasher
) -> None:
    await auth.register(EMAIL, PASSWORD)
    reads = store.reads
    with contextlib.ExitStack() as held:
        for _ in range(pool.capacity):
            held.enter_context(pool.slot())
        with pytest.raises(Overloaded):
            await auth.login(EMAIL, PASSWORD, CLIENT)
        assert (store.reads, hasher.verified) == (reads, [])
    assert (await auth.login(EMAIL, PASSWORD, CLIENT)).user.email == EMAIL  # the slots came back


async def test_every_login_gets_a_fresh_token(auth: Authenticator) -> None:
    await auth.register(EMAIL, PASSWORD)
    first = await auth.login(EMAIL, PASSWORD, CLIENT)
    second = await auth.login(EMAIL, PASSWORD, CLIENT)
    assert first.token != second.token
    assert first.session.id != second.session.id


async def test_only_the_token_digest_is_stored(auth: Authenticator, store: MemoryStore) -> None:
    await auth.register(EMAIL, PASSWORD)
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
    auth: Authenticator, hasher: RecordingHasher
) -> None:
    user = await auth.register(EMAIL, PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        await auth.login(EMAIL, "not the password at all", CLIENT)
    await auth.disable_user(EMAIL)
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


async def test_session_expires_after_its_lifetime(auth: Authenticator, clock: FakeClock) -> None:
    await auth.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    for _ in range(48):  # stay active, so only the absolute limit applies
        clock.advance(minutes=29, seconds=59)
        await auth.check(token)
        await auth.background.drain()  # the use is recorded behind the answer
    clock.advance(hours=1)
    with pytest.raises(InvalidSession):
        await auth.check(token)


async def test_idle_session_expires(auth: Authenticator, clock: FakeClock) -> None:
    await auth.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    clock.advance(minutes=30)
    with pytest.raises(InvalidSession):
        await auth.check(token)


async def test_last_seen_is_written_at_most_once_a_minute(
    auth: Authenticator, store: MemoryStore, clock: FakeClock
) -> None:
    await auth.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
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


async def test_registration_rules(auth: Authenticator) -> None:
    await auth.register(EMAIL, PASSWORD)
    with pytest.raises(EmailTaken):
        await auth.register("ADA@example.com", "another fine passphrase")
    with pytest.raises(EmailInvalid):
        await auth.register("not-an-email", PASSWORD)
    with pytest.raises(PasswordCommon):
        await auth.register("bob@example.com", "password12345678")


async def test_disable_and_revoke_end_every_session(auth: Authenticator) -> None:
    await auth.register(EMAIL, PASSWORD)
    tokens = [(await auth.login(EMAIL, PASSWORD, CLIENT)).token for _ in range(3)]
    assert await auth.revoke_sessions(EMAIL) == 3
    for token in tokens:
        with pytest.raises(InvalidSession):
            await auth.check(token)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    assert await auth.disable_user(EMAIL) == 1
    with pytest.raises(InvalidSession):
        await auth.check(token)
    with pytest.raises(UserNotFound):
        await auth.revoke_sessions("nobody@example.com")


async def test_import_is_all_or_nothing(auth: Authenticator, store: MemoryStore) -> None:
    sha = hashlib.sha256(PASSWORD.encode()).hexdigest()
    rows = [
        ImportRow(2, "one@example.com", sha),
        ImportRow(3, "two@example.com", "md5:nope"),
        ImportRow(4, "ONE@example.com", sha),
        ImportRow(5, "bad email", sha),
    ]
    report = await auth.import_users(rows, skip_invalid=False)
    assert report.imported == 0
    assert [line for line, _ in report.skipped] == [3, 4, 5]
    assert store.data.users == {}

    report = await auth.import_users(rows, skip_invalid=True)
    assert report.imported == 1
    assert (await auth.login("one@example.com", PASSWORD, CLIENT)).user.email == "one@example.com"


async def test_a_login_in_flight_does_not_outlive_a_password_reset(
    auth: Authenticator, store: MemoryStore
) -> None:
    user = await auth.register(EMAIL, PASSWORD)
    assert user is not None

    def reset_meanwhile(data: object) -> None:  # commits between the login's check and its session
        store.data.users[user.id] = replace(store.data.users[user.id], password_hash="$argon2id$reset")

    store.before_next_write = reset_meanwhile
    with pytest.raises(InvalidCredentials):
        await auth.login(EMAIL, PASSWORD, CLIENT)
    assert store.data.sessions == {}


async def test_a_password_change_loses_to_a_logout_everywhere(
    auth: Authenticator, store: MemoryStore
) -> None:
    await auth.register(EMAIL, PASSWORD)
    token = (await auth.login(EMAIL, PASSWORD, CLIENT)).token
    user, session = await auth.check(token)
    store.before_next_write = lambda data: store.data.sessions.clear()
    with pytest.raises(InvalidSession):
        await auth.change_password(user, session, PASSWORD, "a brand new passphrase here", CLIENT)
    assert store.data.users[user.id].password_hash == user.password_hash
