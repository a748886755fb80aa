"""Multi-factor login over an in-memory store (core/mfa.py, second_step.py, factor_checks.py, and their
part of Authenticator.login): what a caller can observe, with a clock the tests move for drift, replay
and expiry."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pyotp
import pytest

from doorward.core.accounts import Accounts
from doorward.core.admin import Admin
from doorward.core.deps import AccountPolicy, Deps
from doorward.core.errors import (
    CodeInvalid,
    InvalidCredentials,
    InvalidCurrentPassword,
    InvalidRequest,
    InvalidSession,
    MfaInvalid,
    MfaNotEnabled,
    MfaRequired,
    MfaTokenInvalid,
    TooManyAttempts,
    TotpActive,
    TotpNotPending,
    UserNotFound,
)
from doorward.core.mfa import Mfa, MfaStatus
from doorward.core.models import LoginResult, User
from doorward.core.second_step import MAX_ATTEMPTS
from doorward.core.secret_box import SecretBox
from doorward.core.sessions import Authenticator
from doorward.core.tokens import token_digest
from tests.conftest import EMAIL, PASSWORD, FakeClock
from tests.core.conftest import CLIENT, RP, RecordingHasher
from tests.fakes import MemoryAuditSink, MemoryStore, RecordingNotifications, _Data

KEY = b"a secret key of at least thirty-two characters"
NEW_PASSWORD = "a brand new passphrase for ada"


@pytest.fixture
def mfa(deps: Deps) -> Mfa:
    return Mfa(deps, SecretBox([KEY]), RP)


def sent(deps: Deps) -> list[tuple[str, str, str | None]]:
    notifications = deps.notifications
    assert isinstance(notifications, RecordingNotifications)
    return notifications.sent


def events(deps: Deps) -> list[str]:
    (sink,) = deps.audit._sinks  # the fixture's one sink
    assert isinstance(sink, MemoryAuditSink)
    return sink.names()


def now_code(secret: str, clock: FakeClock, *, drift: int = 0) -> str:
    """What the authenticator app shows, ``drift`` seconds off the server's clock."""
    return pyotp.TOTP(secret).at(clock() + timedelta(seconds=drift))


class Enrolled:
    """An account with TOTP on: its user, its secret and its recovery codes."""

    def __init__(self, user: User, secret: str, codes: list[str]) -> None:
        self.user, self.secret, self.codes = user, secret, codes


@pytest.fixture
async def enrolled(accounts: Accounts, mfa: Mfa, store: MemoryStore, clock: FakeClock) -> Enrolled:
    user = await accounts.register(EMAIL, PASSWORD)
    assert user is not None
    enrolment = await mfa.begin_totp(user, PASSWORD, CLIENT, aal=2)
    codes = await mfa.confirm_totp(user, now_code(enrolment.secret, clock), CLIENT, aal=2)
    clock.advance(seconds=30)  # the code that confirmed is used: the next login needs the next one
    return Enrolled(store.data.users[user.id], enrolment.secret, codes)


async def password_step(auth: Authenticator, email: str = EMAIL, password: str = PASSWORD) -> str:
    """The mfaToken a right password gets for an account with a second factor."""
    with pytest.raises(MfaRequired) as required:
        await auth.login(email, password, CLIENT)
    assert required.value.methods == ("totp", "recovery_code")
    return required.value.token


# --- set-up -------------------------------------------------------------------------------------


async def test_enrolment_begins_pending_and_confirms_with_a_code_from_the_app(
    accounts: Accounts, mfa: Mfa, deps: Deps, store: MemoryStore, clock: FakeClock
) -> None:
    user = await accounts.register(EMAIL, PASSWORD)
    assert user is not None
    first = await mfa.begin_totp(user, PASSWORD, CLIENT, aal=2)
    assert len(first.secret) == 32
    assert first.uri == (
        f"otpauth://totp/doorward:{EMAIL}?secret={first.secret}&issuer=doorward&algorithm=SHA1&digits=6&period=30"
    )
    assert first.secret not in repr(first)
    again = await mfa.begin_totp(user, PASSWORD, CLIENT, aal=2)  # replaces the pending one
    assert again.secret != first.secret
    assert await mfa.status(user) == MfaStatus(totp=False, recovery_codes_left=0)
    with pytest.raises(CodeInvalid):
        await mfa.confirm_totp(user, now_code(first.secret, clock), CLIENT, aal=2)  # the replaced secret
    assert not store.data.users[user.id].mfa_enabled

    codes = await mfa.confirm_totp(user, now_code(again.secret, clock), CLIENT, aal=2)

    assert len(codes) == len(set(codes)) == 10
    assert store.data.users[user.id].mfa_enabled
    assert await mfa.status(user) == MfaStatus(totp=True, recovery_codes_left=10)
    assert sent(deps)[-1] == ("totp_enabled", EMAIL, None)
    assert [e for e in events(deps) if e.startswith("mfa.")] == [
        "mfa.totp_enrolled",
        "mfa.totp_enrolled",
        "mfa.code_failed",
        "mfa.totp_confirmed",
    ]
    with pytest.raises(TotpActive):
        await mfa.begin_totp(user, PASSWORD, CLIENT, aal=2)
    with pytest.raises(TotpActive):
        await mfa.confirm_totp(user, now_code(again.secret, clock), CLIENT, aal=2)


async def test_set_up_takes_the_password_and_a_started_set_up(
    accounts: Accounts, mfa: Mfa, clock: FakeClock
) -> None:
    user = await accounts.register(EMAIL, PASSWORD)
    assert user is not None
    with pytest.raises(TotpNotPending):
        await mfa.confirm_totp(user, "123456", CLIENT, aal=2)
    with pytest.raises(InvalidCurrentPassword):
        await mfa.begin_totp(user, "not the password at all", CLIENT, aal=2)
    with pytest.raises(InvalidCurrentPassword):
        await mfa.begin_totp(user, "\x00", CLIENT, aal=2)


async def test_the_store_holds_no_secret_code_or_token_in_clear(
    enrolled: Enrolled, auth: Authenticator, store: MemoryStore
) -> None:
    token = await password_step(auth)
    stored = repr(store.data)
    assert enrolled.secret not in stored
    assert enrolled.secret.encode() not in b"".join(f.secret for f in store.data.totp.values())
    for code in enrolled.codes:
        assert code not in stored
        assert code.replace("-", "") not in stored
    assert token not in stored
    assert list(store.data.challenges) == [token_digest(token)]


# --- the login's two steps ----------------------------------------------------------------------


async def test_a_password_alone_opens_no_session_and_a_code_opens_an_aal2_one(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, store: MemoryStore, deps: Deps, clock: FakeClock
) -> None:
    token = await password_step(auth)
    assert len(token) == 43
    assert store.data.sessions == {}

    result = await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))

    assert (result.session.aal, result.session.amr) == (2, ("pwd", "otp"))
    assert result.user.id == enrolled.user.id
    assert not result.mfa_enrollment_required
    user, session = await auth.check(result.token)
    assert (user.mfa_enabled, session.aal, session.amr) == (True, 2, ("pwd", "otp"))
    assert events(deps)[-3:] == ["login.mfa_required", "mfa.code_used", "login.succeeded"]
    (sink,) = deps.audit._sinks  # the last login.succeeded carries the level
    assert isinstance(sink, MemoryAuditSink)
    assert sink.events[-1].detail["aal"] == 2


async def test_a_login_without_a_factor_is_aal1(auth: Authenticator, accounts: Accounts) -> None:
    await accounts.register(EMAIL, PASSWORD)
    result = await auth.login(EMAIL, PASSWORD, CLIENT)
    assert (result.session.aal, result.session.amr, result.mfa_enrollment_required) == (1, ("pwd",), False)


@pytest.mark.parametrize("drift", [-30, 0, 30])
async def test_a_code_of_the_step_before_or_after_is_accepted(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, clock: FakeClock, drift: int
) -> None:
    clock.advance(seconds=30)  # the step before is after the one that confirmed
    token = await password_step(auth)
    result = await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock, drift=drift))
    assert result.session.aal == 2


@pytest.mark.parametrize("drift", [-60, 60])
async def test_a_code_two_steps_away_is_refused(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, clock: FakeClock, drift: int
) -> None:
    clock.advance(minutes=2)
    token = await password_step(auth)
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock, drift=drift))


async def test_a_code_is_accepted_once_and_never_one_of_an_earlier_step(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, clock: FakeClock
) -> None:
    code = now_code(enrolled.secret, clock)
    await mfa.complete_login(await password_step(auth), CLIENT, code=code)
    token = await password_step(auth)
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, code=code)  # replayed within its 30 s
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock, drift=-30))
    clock.advance(seconds=30)
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, code=code)  # still in the window, but used
    assert (await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))).session.aal == 2


async def test_an_mfa_token_is_single_use(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, clock: FakeClock
) -> None:
    token = await password_step(auth)
    await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))
    clock.advance(seconds=30)
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))


async def test_an_mfa_token_lives_five_minutes(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, clock: FakeClock
) -> None:
    token = await password_step(auth)
    clock.advance(minutes=4, seconds=59)
    assert (await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))).session.aal == 2
    clock.advance(seconds=31)
    token = await password_step(auth)
    clock.advance(minutes=5)
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))


async def test_an_mfa_token_is_spent_after_five_wrong_codes(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, clock: FakeClock
) -> None:
    token = await password_step(auth)
    right = now_code(enrolled.secret, clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(MfaInvalid):
            await mfa.complete_login(token, CLIENT, code=wrong)
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=right)
    # A fresh password step gets a fresh token, once the throttle's wait (5 failures: 1 s) is over.
    clock.advance(seconds=1)
    assert (await mfa.complete_login(await password_step(auth), CLIENT, code=right)).session.aal == 2


@pytest.mark.parametrize("token", ["", "x" * 43, "not a token", "a" * 42])
async def test_an_unknown_or_malformed_mfa_token_is_invalid(enrolled: Enrolled, mfa: Mfa, token: str) -> None:
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code="123456")


async def test_a_code_or_a_recovery_code_is_required_not_both(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa
) -> None:
    token = await password_step(auth)
    with pytest.raises(InvalidRequest):
        await mfa.complete_login(token, CLIENT)
    with pytest.raises(InvalidRequest):
        await mfa.complete_login(token, CLIENT, code="123456", recovery_code=enrolled.codes[0])


async def test_wrong_codes_count_in_the_accounts_throttle(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, clock: FakeClock, deps: Deps
) -> None:
    # Four wrong passwords, then the right one: for an account with a factor that resets nothing...
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await auth.login(EMAIL, "not the password at all", CLIENT)
    token = await password_step(auth)
    right = now_code(enrolled.secret, clock)
    # ...so the first wrong code is the fifth failure in a row, and the next attempt must wait.
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, code=f"{(int(right) + 1) % 1_000_000:06d}")
    with pytest.raises(TooManyAttempts):
        await mfa.complete_login(token, CLIENT, code=right)
    with pytest.raises(TooManyAttempts):
        await auth.login(EMAIL, PASSWORD, CLIENT)
    clock.advance(seconds=1)
    result = await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))  # and resets
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await auth.login(EMAIL, "not the password at all", CLIENT)
    assert await password_step(auth)  # four failures since the success: no wait yet
    assert result.session.aal == 2
    assert "mfa.code_failed" in events(deps)


async def test_a_wrong_password_of_an_mfa_account_fails_as_an_unknown_email_does(
    enrolled: Enrolled, auth: Authenticator, hasher: RecordingHasher, store: MemoryStore
) -> None:
    hasher.verified.clear()
    with pytest.raises(InvalidCredentials) as wrong:
        await auth.login(EMAIL, "not the password at all", CLIENT)
    with pytest.raises(InvalidCredentials) as unknown:
        await auth.login("nobody@example.com", PASSWORD, CLIENT)
    assert wrong.value.text == unknown.value.text
    assert hasher.verified == [enrolled.user.password_hash, None]  # one verification each
    assert store.data.challenges == {}


async def test_a_disabled_account_gets_no_token_and_loses_the_one_it_had(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, admin: Admin, clock: FakeClock
) -> None:
    token = await password_step(auth)
    await admin.disable_user(EMAIL)
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))
    with pytest.raises(InvalidCredentials):
        await auth.login(EMAIL, PASSWORD, CLIENT)


async def test_an_outdated_hash_is_upgraded_at_the_password_step(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, store: MemoryStore, deps: Deps, clock: FakeClock
) -> None:

    legacy = hashlib.sha256(PASSWORD.encode()).hexdigest()
    store.data.users[enrolled.user.id] = replace(enrolled.user, password_hash=legacy)
    token = await password_step(auth)
    upgraded = store.data.users[enrolled.user.id].password_hash
    assert upgraded.startswith("$argon2id$")
    assert "password.rehashed" in events(deps)
    assert (await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))).session.aal == 2


# --- recovery codes -----------------------------------------------------------------------------


async def test_a_recovery_code_logs_in_once_and_the_user_is_told_how_many_are_left(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, deps: Deps
) -> None:
    typed = " " + enrolled.codes[3].upper().replace("-", " ") + " "  # as read aloud and typed
    result = await mfa.complete_login(await password_step(auth), CLIENT, recovery_code=typed)
    assert (result.session.aal, result.session.amr) == (2, ("pwd", "otp"))
    assert sent(deps)[-1] == ("recovery_code_used", EMAIL, "9")
    assert "mfa.recovery_code_used" in events(deps)
    assert (await mfa.status(enrolled.user)).recovery_codes_left == 9

    token = await password_step(auth)
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, recovery_code=enrolled.codes[3])
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, recovery_code="not a code")
    await mfa.complete_login(token, CLIENT, recovery_code=enrolled.codes[4])
    assert sent(deps)[-1] == ("recovery_code_used", EMAIL, "8")


async def test_regenerated_codes_void_the_old_set(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, deps: Deps
) -> None:
    with pytest.raises(InvalidCurrentPassword):
        await mfa.regenerate_codes(enrolled.user, "not the password at all", CLIENT, aal=2)
    fresh = await mfa.regenerate_codes(enrolled.user, PASSWORD, CLIENT, aal=2)
    assert len(fresh) == 10
    assert not set(fresh) & set(enrolled.codes)
    assert sent(deps)[-1] == ("recovery_codes_regenerated", EMAIL, None)
    assert "mfa.recovery_codes_regenerated" in events(deps)
    token = await password_step(auth)
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, recovery_code=enrolled.codes[0])
    assert (await mfa.complete_login(token, CLIENT, recovery_code=fresh[0])).session.aal == 2


async def test_no_codes_without_a_factor(accounts: Accounts, mfa: Mfa) -> None:
    user = await accounts.register(EMAIL, PASSWORD)
    assert user is not None
    with pytest.raises(MfaNotEnabled):
        await mfa.regenerate_codes(user, PASSWORD, CLIENT, aal=2)
    with pytest.raises(MfaNotEnabled):
        await mfa.disable_totp(user, PASSWORD, "123456", CLIENT, aal=2)


# --- turning it off -----------------------------------------------------------------------------


@pytest.mark.parametrize("with_recovery_code", [False, True])
async def test_disabling_takes_the_password_and_a_code(
    enrolled: Enrolled,
    auth: Authenticator,
    mfa: Mfa,
    store: MemoryStore,
    deps: Deps,
    clock: FakeClock,
    with_recovery_code: bool,
) -> None:
    pending = await password_step(auth)
    code = enrolled.codes[0] if with_recovery_code else now_code(enrolled.secret, clock)
    with pytest.raises(InvalidCurrentPassword):
        await mfa.disable_totp(enrolled.user, "not the password at all", code, CLIENT, aal=2)
    with pytest.raises(CodeInvalid):
        await mfa.disable_totp(
            enrolled.user, PASSWORD, "000000" if code != "000000" else "111111", CLIENT, aal=2
        )
    with pytest.raises(CodeInvalid):
        await mfa.disable_totp(enrolled.user, PASSWORD, "zzzzz-zzzzz", CLIENT, aal=2)

    await mfa.disable_totp(enrolled.user, PASSWORD, code, CLIENT, aal=2)

    assert not store.data.users[enrolled.user.id].mfa_enabled
    assert (store.data.totp, store.data.codes, store.data.challenges) == ({}, {}, {})
    assert sent(deps)[-1] == ("totp_disabled", EMAIL, None)
    assert "mfa.totp_disabled" in events(deps)
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(pending, CLIENT, code=now_code(enrolled.secret, clock))
    assert (await auth.login(EMAIL, PASSWORD, CLIENT)).session.aal == 1
    with pytest.raises(MfaNotEnabled):
        await mfa.disable_totp(enrolled.user, PASSWORD, code, CLIENT, aal=2)


async def test_wrong_codes_when_disabling_count_in_the_throttle(enrolled: Enrolled, mfa: Mfa) -> None:
    for _ in range(5):
        with pytest.raises(CodeInvalid):
            await mfa.disable_totp(enrolled.user, PASSWORD, "zzzzz-zzzzz", CLIENT, aal=2)
    with pytest.raises(TooManyAttempts):
        await mfa.disable_totp(enrolled.user, PASSWORD, enrolled.codes[0], CLIENT, aal=2)


# --- what other flows do to it ------------------------------------------------------------------


async def test_a_password_reset_keeps_mfa_and_voids_a_half_done_login(
    enrolled: Enrolled, auth: Authenticator, accounts: Accounts, mfa: Mfa, deps: Deps, clock: FakeClock
) -> None:
    token = await password_step(auth)
    await accounts.request_password_reset(EMAIL, CLIENT)
    await accounts.background.drain()
    (reset_token,) = [t for kind, _, t in sent(deps) if kind == "password_reset"]
    assert reset_token is not None
    await accounts.reset_password(reset_token, NEW_PASSWORD)

    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))
    fresh = await password_step(auth, password=NEW_PASSWORD)  # still a second factor
    assert (await mfa.complete_login(fresh, CLIENT, code=now_code(enrolled.secret, clock))).session.aal == 2


async def test_a_password_change_voids_a_half_done_login(
    enrolled: Enrolled, auth: Authenticator, accounts: Accounts, mfa: Mfa, clock: FakeClock
) -> None:
    result = await mfa.complete_login(
        await password_step(auth), CLIENT, code=now_code(enrolled.secret, clock)
    )
    clock.advance(seconds=30)
    token = await password_step(auth)
    await accounts.change_password(result.user, result.session, PASSWORD, NEW_PASSWORD, CLIENT)
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))


async def test_the_admin_reset_removes_the_factor_and_ends_every_session(
    enrolled: Enrolled,
    auth: Authenticator,
    mfa: Mfa,
    admin: Admin,
    store: MemoryStore,
    deps: Deps,
    clock: FakeClock,
) -> None:
    result = await mfa.complete_login(
        await password_step(auth), CLIENT, code=now_code(enrolled.secret, clock)
    )
    pending = await password_step(auth)

    assert await admin.reset_mfa(EMAIL.upper()) == 1

    with pytest.raises(InvalidSession):
        await auth.check(result.token)
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(pending, CLIENT, recovery_code=enrolled.codes[0])
    assert (store.data.totp, store.data.codes, store.data.challenges) == ({}, {}, {})
    assert sent(deps)[-1] == ("mfa_reset", EMAIL, None)
    assert "mfa.admin_reset" in events(deps)
    assert (await auth.login(EMAIL, PASSWORD, CLIENT)).session.aal == 1
    with pytest.raises(MfaNotEnabled):
        await admin.reset_mfa(EMAIL)
    with pytest.raises(UserNotFound):
        await admin.reset_mfa("nobody@example.com")


async def test_prune_deletes_expired_mfa_tokens(
    enrolled: Enrolled, auth: Authenticator, admin: Admin, store: MemoryStore, clock: FakeClock
) -> None:
    await password_step(auth)
    clock.advance(minutes=4)
    await password_step(auth)
    clock.advance(minutes=1)
    assert (await admin.prune())["mfa_challenges"] == 1
    assert len(store.data.challenges) == 1


# --- the policy ---------------------------------------------------------------------------------


async def test_with_mfa_required_an_account_without_a_factor_may_only_enrol(
    deps: Deps, accounts: Accounts, clock: FakeClock
) -> None:
    strict = replace(deps, account_policy=AccountPolicy(require_mfa=True))
    auth, mfa = Authenticator(strict), Mfa(strict, SecretBox([KEY]), RP)
    await accounts.register(EMAIL, PASSWORD)

    result = await auth.login(EMAIL, PASSWORD, CLIENT)

    assert isinstance(result, LoginResult)
    assert (result.session.aal, result.mfa_enrollment_required) == (1, True)
    user, _ = await auth.check(result.token)
    assert auth.enrollment_required(user)
    enrolment = await mfa.begin_totp(user, PASSWORD, CLIENT, aal=2)
    await mfa.confirm_totp(user, now_code(enrolment.secret, clock), CLIENT, aal=2)
    user, _ = await auth.check(result.token)  # the same session, now of an account with a factor
    assert not auth.enrollment_required(user)
    assert not Authenticator(deps).enrollment_required(replace(user, mfa_enabled=False))  # policy off


# --- keys ---------------------------------------------------------------------------------------


async def test_a_rotated_key_still_decrypts_and_the_secret_moves_to_the_new_key(
    enrolled: Enrolled, auth: Authenticator, deps: Deps, store: MemoryStore, clock: FakeClock
) -> None:
    new_key = b"the next key, thirty-two characters or more"
    rotated = Mfa(deps, SecretBox([new_key, KEY]), RP)
    assert not SecretBox([new_key, KEY]).is_current(store.data.totp[enrolled.user.id].secret)

    result = await rotated.complete_login(
        await password_step(auth), CLIENT, code=now_code(enrolled.secret, clock)
    )

    assert result.session.aal == 2
    assert SecretBox([new_key]).is_current(store.data.totp[enrolled.user.id].secret)
    clock.advance(seconds=30)
    only_new = Mfa(deps, SecretBox([new_key]), RP)
    assert (
        await only_new.complete_login(
            await password_step(auth), CLIENT, code=now_code(enrolled.secret, clock)
        )
    ).session.aal == 2


async def test_a_secret_no_key_opens_is_a_wrong_code_and_an_error_in_the_log(
    enrolled: Enrolled, auth: Authenticator, deps: Deps, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    lost = Mfa(deps, SecretBox([b"not the key the secret was made with, at all"]), RP)
    token = await password_step(auth)
    with pytest.raises(MfaInvalid):
        await lost.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))
    assert any(
        r.levelno == logging.ERROR and "DOORWARD_SECRET_KEYS" in r.getMessage() for r in caplog.records
    )
    assert enrolled.secret not in caplog.text
    # The recovery codes are hashes, not encrypted: they still get the user in.
    assert (await lost.complete_login(token, CLIENT, recovery_code=enrolled.codes[0])).session.aal == 2


# --- races: what a concurrent request commits between the steps ----------------------------------


def before_write(store: MemoryStore, n: int, meddle: Callable[[_Data], None]) -> None:
    """Run ``meddle`` on the committed data just before the ``n``-th write from now begins."""
    if n == 1:
        store.before_next_write = meddle
    else:
        store.before_next_write = lambda _data: before_write(store, n - 1, meddle)


async def test_a_token_used_by_a_concurrent_request_is_invalid(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, store: MemoryStore, clock: FakeClock
) -> None:
    token = await password_step(auth)
    digest = token_digest(token)

    def use(data: _Data) -> None:
        data.challenges[digest] = replace(data.challenges[digest], used_at=clock())

    before_write(store, 2, use)  # after its attempt was counted, before it is used
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))


async def test_a_code_used_by_a_concurrent_request_is_a_replay_and_spends_no_token(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, store: MemoryStore, clock: FakeClock
) -> None:
    token = await password_step(auth)
    code = now_code(enrolled.secret, clock)

    def use_the_step(data: _Data) -> None:
        factor = data.totp[enrolled.user.id]
        data.totp[enrolled.user.id] = replace(factor, last_step=factor.last_step + 1)

    before_write(store, 2, use_the_step)
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(token, CLIENT, code=code)
    assert store.data.challenges[token_digest(token)].used_at is None
    clock.advance(seconds=30)
    assert (await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))).session.aal == 2


async def test_a_password_changed_before_the_session_opens_wins(
    enrolled: Enrolled, auth: Authenticator, mfa: Mfa, store: MemoryStore, deps: Deps, clock: FakeClock
) -> None:
    token = await password_step(auth)

    def change(data: _Data) -> None:
        data.users[enrolled.user.id] = replace(data.users[enrolled.user.id], password_hash="$argon2id$other")

    before_write(store, 3, change)  # after the challenge and the code were used: open_session's write
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, code=now_code(enrolled.secret, clock))
    assert store.data.sessions == {}
    assert events(deps)[-1] == "login.failed"


async def test_a_password_step_outrun_by_a_disable_stores_no_challenge(
    enrolled: Enrolled, auth: Authenticator, store: MemoryStore
) -> None:
    def disable(data: _Data) -> None:
        data.users[enrolled.user.id] = replace(data.users[enrolled.user.id], disabled=True)

    before_write(store, 1, disable)
    with pytest.raises(InvalidCredentials):
        await auth.login(EMAIL, PASSWORD, CLIENT)
    assert store.data.challenges == {}
