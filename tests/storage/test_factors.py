"""Second factors in the database (storage/factors.py), and the assurance level on sessions, on both
databases: every "use" a compare-and-set, the flag and the level read by every session read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from doorward.core.models import MfaChallenge, NewUser, Session, User
from doorward.core.tokens import new_token, token_digest
from doorward.storage import SqlStore, create_engine
from doorward.storage.lookup import open_lookup
from doorward.storage.rows import FIND_SESSION

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
HASH = "$argon2id$placeholder"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """A store whose session checks take the fast lookup, as a served one does."""
    engine = create_engine(database_url, timeout=5)
    lookup = open_lookup(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=2)
    store = SqlStore(engine, lookup=lookup)
    yield store
    await store.close()
    await engine.dispose()


async def add_user(store: SqlStore, n: int = 1) -> User:
    async with store.write() as tx:
        return await tx.users.add(NewUser(f"u{n}@example.com", f"u{n}@example.com", HASH), NOW)


def challenge(user_id: int, *, lifetime: timedelta = timedelta(minutes=5)) -> MfaChallenge:
    return MfaChallenge(token_digest(new_token()), user_id, NOW, NOW + lifetime)


# --- the flag on users, the level on sessions --------------------------------------------------


async def test_every_session_read_sees_the_level_and_the_factor_flag(store: SqlStore) -> None:
    user = await add_user(store)
    assert user.mfa_enabled is False
    async with store.write() as tx:
        await tx.factors.set_mfa_enabled(user.id, True, NOW)
    digests = {aal: token_digest(new_token()) for aal in (1, 2)}
    for aal, digest in digests.items():
        amr = ("pwd",) if aal == 1 else ("pwd", "otp")
        session = Session(
            f"s{aal}", user.id, NOW + timedelta(seconds=aal), NOW, NOW + timedelta(days=1), None, None
        )
        # open_session: one statement on PostgreSQL, a transaction on SQLite
        assert await store.open_session(replace(session, aal=aal, amr=amr), digest, HASH)

    for aal, digest in digests.items():
        fast = await store.find_session(digest)  # the session check's own read (storage/lookup.py)
        async with store.read() as tx:
            pooled = await tx.sessions.find(digest)
        assert fast == pooled
        assert fast is not None
        session, owner = fast
        assert (session.aal, session.amr) == ((1, ("pwd",)) if aal == 1 else (2, ("pwd", "otp")))
        assert owner.mfa_enabled is True
    async with store.read() as tx:
        listed = await tx.sessions.list_for_user(user.id)
        by_email = await tx.users.by_canonical_email(user.email_canonical)
        by_id = await tx.users.by_id(user.id)
    assert [(s.id, s.aal, s.amr) for s in listed] == [("s2", 2, ("pwd", "otp")), ("s1", 1, ("pwd",))]
    assert by_email is not None and by_email.mfa_enabled
    assert by_id is not None and by_id.mfa_enabled


def test_the_session_check_reads_only_the_factor_and_breach_columns_more_and_no_other_table() -> None:
    """aal, amr and the breach flag of the session, and mfa_enabled and the two breach times of the
    user it already read: no other join, no read more."""
    before = {
        *(f"s_{name}" for name in ("id", "user_id", "created_at", "last_seen_at", "expires_at")),
        *(f"s_{name}" for name in ("client_address", "user_agent")),
        *("id", "email", "email_canonical", "password_hash", "disabled", "created_at", "updated_at"),
        "email_verified_at",
    }
    names = [column.name for column in FIND_SESSION.selected_columns]
    assert len(names) == len(set(names))
    assert set(names) - before == {
        *("s_aal", "s_amr", "mfa_enabled"),
        *("breach_checked_at", "password_compromised_at"),
    }
    sql = str(FIND_SESSION)
    assert sql.count("JOIN") == 1
    assert "totp_factors" not in sql
    assert "mfa_challenges" not in sql


# --- TOTP ----------------------------------------------------------------------------------------


async def test_a_pending_secret_is_replaced_until_confirmed_then_kept(store: SqlStore) -> None:
    user = await add_user(store)
    async with store.write() as tx:
        assert await tx.factors.totp(user.id) is None
        assert await tx.factors.save_pending_totp(user.id, b"first", NOW)
        assert await tx.factors.save_pending_totp(user.id, b"second", NOW + timedelta(minutes=1))
        factor = await tx.factors.totp(user.id)
    assert factor is not None
    assert (factor.secret, factor.confirmed_at, factor.last_step) == (b"second", None, 0)
    assert factor.created_at == NOW + timedelta(minutes=1)

    async with store.write() as tx:
        assert not await tx.factors.confirm_totp(user.id, b"first", 100, NOW)  # not the pending secret
        assert await tx.factors.confirm_totp(user.id, b"second", 100, NOW)
        assert not await tx.factors.confirm_totp(user.id, b"second", 101, NOW)  # confirmed already
        assert not await tx.factors.save_pending_totp(user.id, b"third", NOW)  # a confirmed one stays
        factor = await tx.factors.totp(user.id)
    assert factor is not None
    assert (factor.secret, factor.confirmed_at, factor.last_step) == (b"second", NOW, 100)


async def test_a_step_is_used_once_and_never_an_earlier_one(store: SqlStore) -> None:
    user = await add_user(store)
    async with store.write() as tx:
        await tx.factors.save_pending_totp(user.id, b"s", NOW)
        assert not await tx.factors.use_totp_step(user.id, 5)  # pending: no code counts yet
        await tx.factors.confirm_totp(user.id, b"s", 100, NOW)
        assert not await tx.factors.use_totp_step(user.id, 100)
        assert not await tx.factors.use_totp_step(user.id, 99)
        assert await tx.factors.use_totp_step(user.id, 101)
        assert not await tx.factors.use_totp_step(user.id, 101)


async def test_two_requests_with_one_code_at_once_use_it_once(store: SqlStore) -> None:
    user = await add_user(store)
    async with store.write() as tx:
        await tx.factors.save_pending_totp(user.id, b"s", NOW)
        await tx.factors.confirm_totp(user.id, b"s", 100, NOW)

    async def use() -> bool:
        async with store.write() as tx:
            used = await tx.factors.use_totp_step(user.id, 101)
            await asyncio.sleep(0.05)  # hold the transaction open while the other one tries
            return used

    assert sorted(await asyncio.gather(use(), use())) == [False, True]


async def test_re_encryption_replaces_only_the_secret_it_read(store: SqlStore) -> None:
    user = await add_user(store)
    async with store.write() as tx:
        await tx.factors.save_pending_totp(user.id, b"old", NOW)
        assert not await tx.factors.replace_totp_secret(user.id, b"other", b"new")
        assert await tx.factors.replace_totp_secret(user.id, b"old", b"new")
        factor = await tx.factors.totp(user.id)
        assert factor is not None and factor.secret == b"new"
        assert await tx.factors.delete_totp(user.id)
        assert not await tx.factors.delete_totp(user.id)


# --- recovery codes ------------------------------------------------------------------------------


async def test_recovery_codes_are_replaced_as_a_set_and_used_once(store: SqlStore) -> None:
    user, other = await add_user(store, 1), await add_user(store, 2)
    async with store.write() as tx:
        await tx.factors.replace_recovery_codes(user.id, ["h1", "h2", "h3"], NOW)
        await tx.factors.replace_recovery_codes(other.id, ["o1"], NOW)
        codes = await tx.factors.recovery_codes(user.id)
        assert [c.code_hash for c in codes] == ["h1", "h2", "h3"]
        assert await tx.factors.use_recovery_code(codes[1].id, NOW)
        assert not await tx.factors.use_recovery_code(codes[1].id, NOW)
        assert [c.code_hash for c in await tx.factors.recovery_codes(user.id)] == ["h1", "h3"]

        await tx.factors.replace_recovery_codes(user.id, ["n1", "n2"], NOW)
        assert not await tx.factors.use_recovery_code(codes[0].id, NOW)  # the old set is gone
        assert [c.code_hash for c in await tx.factors.recovery_codes(user.id)] == ["n1", "n2"]
        assert await tx.factors.delete_recovery_codes(user.id) == 2
        assert [c.code_hash for c in await tx.factors.recovery_codes(other.id)] == ["o1"]


# --- challenges (mfaTokens) ------------------------------------------------------------------------


async def test_a_challenge_is_stored_only_while_the_password_checked_is_still_the_users(
    store: SqlStore,
) -> None:
    user = await add_user(store)
    async with store.write() as tx:
        assert not await tx.factors.add_challenge(challenge(user.id), "$argon2id$another")
        assert await tx.factors.add_challenge(live := challenge(user.id), HASH)
        assert await tx.factors.challenge(live.digest) == live
        await tx.users.set_disabled(user.id, True, NOW)
        assert not await tx.factors.add_challenge(challenge(user.id), HASH)


async def test_a_challenge_takes_five_attempts_and_one_use_before_it_expires(store: SqlStore) -> None:
    user = await add_user(store)
    live, spent, old = (
        challenge(user.id),
        challenge(user.id),
        challenge(user.id, lifetime=timedelta(minutes=1)),
    )
    async with store.write() as tx:
        for each in (live, spent, old):
            await tx.factors.add_challenge(each, HASH)
    async with store.write() as tx:
        assert [await tx.factors.count_attempt(spent.digest, NOW, 5) for _ in range(6)] == [True] * 5 + [
            False
        ]
        assert not await tx.factors.count_attempt(old.digest, NOW + timedelta(minutes=1), 5)
        assert not await tx.factors.use_challenge(old.digest, NOW + timedelta(minutes=1))
        assert await tx.factors.count_attempt(live.digest, NOW, 5)
        assert await tx.factors.use_challenge(live.digest, NOW)
        assert not await tx.factors.use_challenge(live.digest, NOW)
        assert not await tx.factors.count_attempt(live.digest, NOW, 5)  # used
        assert not await tx.factors.count_attempt(b"x" * 32, NOW, 5)
    async with store.read() as tx:
        stored = await tx.factors.challenge(spent.digest)
        used = await tx.factors.challenge(live.digest)
    assert stored is not None and stored.attempts == 5
    assert used is not None and used.used_at == NOW and used.attempts == 1


async def test_challenges_go_with_their_user_and_when_expired(store: SqlStore) -> None:
    user, other = await add_user(store, 1), await add_user(store, 2)
    async with store.write() as tx:
        for each in (
            challenge(user.id),
            challenge(user.id),
            challenge(other.id, lifetime=timedelta(hours=1)),
        ):
            await tx.factors.add_challenge(each, HASH)
        await tx.factors.add_challenge(challenge(other.id, lifetime=timedelta(minutes=1)), HASH)
    async with store.write() as tx:
        assert await tx.factors.delete_challenges(user.id) == 2
        assert await tx.factors.delete_expired_challenges(NOW + timedelta(minutes=1)) == 1
        assert await tx.factors.delete_expired_challenges(NOW + timedelta(minutes=1)) == 0
