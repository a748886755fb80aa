"""Passkeys and their ceremonies' challenges in the database (storage/passkeys.py), on both
databases: a credential id registered once, a challenge taken once and only for what it was made
for, a use recorded once per count."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from doorward.core.models import CeremonyPurpose, MfaChallenge, NewUser, Passkey, User, WebauthnChallenge
from doorward.core.tokens import new_session_id
from doorward.storage import SqlStore, create_engine
from tests.db import fetch

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
HASH = "$argon2id$placeholder"
REGISTER, LOGIN, SECOND_STEP = CeremonyPurpose


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    engine = create_engine(database_url, timeout=5)
    store = SqlStore(engine)
    yield store
    await store.close()
    await engine.dispose()


async def add_user(store: SqlStore, n: int = 1) -> User:
    async with store.write() as tx:
        return await tx.users.add(NewUser(f"u{n}@example.com", f"u{n}@example.com", HASH), NOW)


def passkey(user_id: int, *, name: str = "Laptop", at: datetime = NOW, **fields: object) -> Passkey:
    made = Passkey(
        id=new_session_id(),
        user_id=user_id,
        credential_id=secrets.token_bytes(64),
        public_key=b"\xa5\x01\x02" + secrets.token_bytes(70),
        sign_count=0,
        transports=("internal", "hybrid"),
        aaguid="fbfc3007-154e-4ecc-8c0b-6e020557d7bd",
        backup_eligible=True,
        backed_up=False,
        user_handle=b"h" * 32,
        name=name,
        created_at=at,
    )
    return replace(made, **fields)  # type: ignore[arg-type]


def ceremony(purpose: CeremonyPurpose, **fields: object) -> WebauthnChallenge:
    digest = hashlib.sha256(secrets.token_bytes(32)).digest()
    made = WebauthnChallenge(digest, purpose, NOW, NOW + timedelta(minutes=5))
    return replace(made, **fields)  # type: ignore[arg-type]


# --- credentials ---------------------------------------------------------------------------------


async def test_a_passkey_is_stored_with_every_field_and_read_back_as_it_was(store: SqlStore) -> None:
    user, other = await add_user(store, 1), await add_user(store, 2)
    first = passkey(user.id, name="Phone")
    second = passkey(user.id, name="Security key", at=NOW + timedelta(minutes=1), transports=("usb",))
    theirs = passkey(other.id, backup_eligible=False, aaguid="00000000-0000-0000-0000-000000000000")
    async with store.write() as tx:
        for each in (second, first, theirs):
            assert await tx.passkeys.add(each)
    async with store.read() as tx:
        assert await tx.passkeys.for_user(user.id) == [first, second]  # oldest first
        assert await tx.passkeys.for_user(other.id) == [theirs]
        assert await tx.passkeys.by_credential_id(second.credential_id) == second
        assert await tx.passkeys.by_credential_id(b"unknown") is None
    assert "public_key" not in repr(first) and first.public_key.hex() not in repr(first)


async def test_a_credential_id_is_registered_once_across_accounts(store: SqlStore) -> None:
    user, other = await add_user(store, 1), await add_user(store, 2)
    mine = passkey(user.id)
    async with store.write() as tx:
        assert await tx.passkeys.add(mine)
        assert not await tx.passkeys.add(passkey(other.id, credential_id=mine.credential_id))
        assert await tx.passkeys.add(passkey(other.id))  # the transaction goes on (PostgreSQL too)
    async with store.read() as tx:
        assert len(await tx.passkeys.for_user(other.id)) == 1


async def test_rename_and_delete_touch_only_the_owners_passkey(store: SqlStore) -> None:
    user, other = await add_user(store, 1), await add_user(store, 2)
    mine, theirs = passkey(user.id), passkey(other.id)
    async with store.write() as tx:
        await tx.passkeys.add(mine)
        await tx.passkeys.add(theirs)
        assert not await tx.passkeys.rename(user.id, theirs.id, "Mine now")
        assert await tx.passkeys.rename(user.id, mine.id, "Ünïcode key ✓" + "x" * 51)
        assert not await tx.passkeys.delete(user.id, theirs.id)
        assert not await tx.passkeys.delete(user.id, "no-such-id")
    async with store.read() as tx:
        (renamed,) = await tx.passkeys.for_user(user.id)
        assert renamed.name == "Ünïcode key ✓" + "x" * 51
        assert await tx.passkeys.for_user(other.id) == [theirs]
    async with store.write() as tx:
        assert await tx.passkeys.delete(user.id, mine.id)
        await tx.passkeys.add(passkey(other.id))
        assert await tx.passkeys.delete_for_user(other.id) == 2
        assert await tx.passkeys.for_user(other.id) == []


async def test_a_use_is_recorded_only_with_a_higher_count_or_by_a_key_that_counts_nothing(
    store: SqlStore,
) -> None:
    user = await add_user(store)
    counting, counterless = passkey(user.id, sign_count=5), passkey(user.id)
    later = NOW + timedelta(hours=1)
    async with store.write() as tx:
        await tx.passkeys.add(counting)
        await tx.passkeys.add(counterless)
        assert not await tx.passkeys.record_use(counting.id, 5, True, later)  # the same count
        assert not await tx.passkeys.record_use(counting.id, 4, True, later)  # backwards
        assert not await tx.passkeys.record_use(counting.id, 0, True, later)  # to zero
        assert await tx.passkeys.record_use(counting.id, 6, True, later)
        assert await tx.passkeys.record_use(counterless.id, 0, True, later)
        assert await tx.passkeys.record_use(counterless.id, 0, False, later)
        assert await tx.passkeys.record_use(counterless.id, 1, False, later)  # began counting
        assert not await tx.passkeys.record_use("no-such-id", 9, False, later)
    async with store.read() as tx:
        stored = {p.id: p for p in await tx.passkeys.for_user(user.id)}
    one, two = stored[counting.id], stored[counterless.id]
    assert (one.sign_count, one.backed_up, one.last_used_at) == (6, True, later)
    assert (two.sign_count, two.backed_up, two.last_used_at) == (1, False, later)


async def test_two_uses_with_one_count_at_once_record_it_once(store: SqlStore) -> None:
    user = await add_user(store)
    key = passkey(user.id, sign_count=5)
    async with store.write() as tx:
        await tx.passkeys.add(key)

    async def use() -> bool:
        async with store.write() as tx:
            used = await tx.passkeys.record_use(key.id, 6, False, NOW)
            await asyncio.sleep(0.05)  # hold the transaction open while the other one tries
            return used

    assert sorted(await asyncio.gather(use(), use())) == [False, True]


# --- challenges --------------------------------------------------------------------------------


async def test_a_challenge_is_taken_once_for_its_purpose_and_binding_before_it_expires(
    store: SqlStore,
) -> None:
    user, other = await add_user(store, 1), await add_user(store, 2)
    mfa = MfaChallenge(b"m" * 32, user.id, NOW, NOW + timedelta(minutes=5))
    async with store.write() as tx:
        assert await tx.factors.add_challenge(mfa, HASH)
    login = ceremony(LOGIN)
    register = ceremony(REGISTER, user_id=user.id, user_handle=b"u" * 32)
    second = ceremony(SECOND_STEP, user_id=user.id, mfa_digest=mfa.digest)
    async with store.write() as tx:
        for each in (login, register, second):
            await tx.passkeys.add_challenge(each)
    async with store.read() as tx:
        assert await tx.passkeys.challenge(register.digest) == register
        assert await tx.passkeys.challenge(b"x" * 32) is None

    async with store.write() as tx:
        take = tx.passkeys.take_challenge
        assert not await take(login.digest, REGISTER, NOW)  # another ceremony's
        assert not await take(login.digest, LOGIN, NOW, user_id=user.id)  # a login's names nobody
        assert not await take(login.digest, LOGIN, NOW + timedelta(minutes=5))  # expired
        assert await take(login.digest, LOGIN, NOW + timedelta(minutes=4, seconds=59))
        assert not await take(login.digest, LOGIN, NOW)  # used

        assert not await take(register.digest, REGISTER, NOW)  # bound to a user
        assert not await take(register.digest, REGISTER, NOW, user_id=other.id)
        assert await take(register.digest, REGISTER, NOW, user_id=user.id)

        assert not await take(second.digest, SECOND_STEP, NOW, user_id=user.id)  # bound to an mfaToken
        assert not await take(second.digest, SECOND_STEP, NOW, user_id=user.id, mfa_digest=b"n" * 32)
        assert await take(second.digest, SECOND_STEP, NOW, user_id=user.id, mfa_digest=mfa.digest)
    async with store.read() as tx:
        used = await tx.passkeys.challenge(second.digest)
    assert used is not None and used.used_at == NOW


async def test_two_requests_with_one_challenge_at_once_take_it_once(store: SqlStore) -> None:
    login = ceremony(LOGIN)
    async with store.write() as tx:
        await tx.passkeys.add_challenge(login)

    async def take() -> bool:
        async with store.write() as tx:
            taken = await tx.passkeys.take_challenge(login.digest, LOGIN, NOW)
            await asyncio.sleep(0.05)
            return taken

    assert sorted(await asyncio.gather(take(), take())) == [False, True]


async def test_challenges_go_with_their_user_and_when_expired(store: SqlStore, database_url: str) -> None:
    user = await add_user(store)
    async with store.write() as tx:
        await tx.passkeys.add_challenge(ceremony(REGISTER, user_id=user.id))
        await tx.passkeys.add_challenge(ceremony(LOGIN))
        await tx.passkeys.add_challenge(ceremony(LOGIN, expires_at=NOW + timedelta(minutes=1)))
        await tx.passkeys.add_challenge(ceremony(LOGIN, expires_at=NOW + timedelta(hours=1)))
    async with store.write() as tx:
        assert await tx.passkeys.delete_challenges(user.id) == 1
        assert await tx.passkeys.delete_expired_challenges(NOW + timedelta(minutes=5)) == 2
        assert await tx.passkeys.delete_expired_challenges(NOW + timedelta(minutes=5)) == 0
    assert await fetch(database_url, "SELECT count(*) FROM webauthn_challenges") == [(1,)]


async def test_the_first_factor_of_a_sign_in_is_kept_with_its_mfa_token(store: SqlStore) -> None:
    user = await add_user(store)
    by_passkey = MfaChallenge(b"p" * 32, user.id, NOW, NOW + timedelta(minutes=5), first_factor="swk")
    by_password = MfaChallenge(b"q" * 32, user.id, NOW, NOW + timedelta(minutes=5))
    async with store.write() as tx:
        assert await tx.factors.add_challenge(by_passkey, HASH)
        assert await tx.factors.add_challenge(by_password, HASH)
    async with store.read() as tx:
        assert await tx.factors.challenge(by_passkey.digest) == by_passkey
        stored = await tx.factors.challenge(by_password.digest)
    assert stored is not None and stored.first_factor == "pwd"
