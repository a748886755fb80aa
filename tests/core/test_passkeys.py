"""Passkeys over an in-memory store (core/passkeys.py, and their part of core/second_step.py): every
ceremony answered by a software authenticator (tests/authenticator.py) that signs with any flags and
sign counts, so each WebAuthn check is seen passing and failing."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pyotp
import pytest

from doorward.core.accounts import Accounts
from doorward.core.admin import Admin
from doorward.core.deps import AccountPolicy, Deps
from doorward.core.errors import (
    EmailUnverified,
    InvalidCredentials,
    InvalidCurrentPassword,
    InvalidRequest,
    LastFactor,
    MfaInvalid,
    MfaRequired,
    MfaTokenInvalid,
    TooManyAttempts,
)
from doorward.core.mfa import Mfa
from doorward.core.models import AuditEvent, User
from doorward.core.passkey_errors import (
    PasskeyInvalid,
    PasskeyLimit,
    PasskeyNotFound,
    UserVerificationRequired,
)
from doorward.core.passkeys import MAX_PASSKEYS, PasskeyInfo, Passkeys
from doorward.core.relying_party import challenge_digest
from doorward.core.second_step import MAX_ATTEMPTS
from doorward.core.secret_box import SecretBox
from doorward.core.sessions import Authenticator
from doorward.core.tokens import token_digest
from tests.authenticator import SoftwareAuthenticator, b64url, unb64url
from tests.conftest import EMAIL, PASSWORD, FakeClock
from tests.core.conftest import CLIENT, ORIGIN, RP, RP_ID
from tests.fakes import MemoryAuditSink, MemoryStore, RecordingNotifications

KEY = b"a secret key of at least thirty-two characters"
OTHER_EMAIL = "grace@example.com"
OTHER_PASSWORD = "another long passphrase, quite unusual"


@pytest.fixture
def passkeys(deps: Deps) -> Passkeys:
    return Passkeys(deps, RP)


@pytest.fixture
def mfa(deps: Deps) -> Mfa:
    return Mfa(deps, SecretBox([KEY]), RP)


@pytest.fixture
async def user(accounts: Accounts) -> User:
    made = await accounts.register(EMAIL, PASSWORD)
    assert made is not None
    return made


def key(**options: Any) -> SoftwareAuthenticator:
    return SoftwareAuthenticator(RP_ID, ORIGIN, **options)


def sent(deps: Deps) -> list[tuple[str, str, str | None]]:
    notifications = deps.notifications
    assert isinstance(notifications, RecordingNotifications)
    return notifications.sent


def audited(deps: Deps) -> list[AuditEvent]:
    (sink,) = deps.audit._sinks
    assert isinstance(sink, MemoryAuditSink)
    return sink.events


def events(deps: Deps) -> list[str]:
    return [event.event for event in audited(deps)]


def last(deps: Deps, name: str) -> dict[str, object]:
    return next(e.detail for e in reversed(audited(deps)) if e.event == name)


async def add(
    passkeys: Passkeys,
    user: User,
    authenticator: SoftwareAuthenticator,
    name: str | None = None,
    password: str = PASSWORD,
) -> PasskeyInfo:
    options = await passkeys.registration_options(user, password, CLIENT, aal=2)
    return await passkeys.register(user, authenticator.create(options), name, CLIENT, aal=2)


def current(store: MemoryStore, user: User) -> User:
    return store.data.users[user.id]


async def password_step(auth: Authenticator, methods: tuple[str, ...]) -> str:
    with pytest.raises(MfaRequired) as required:
        await auth.login(EMAIL, PASSWORD, CLIENT)
    assert required.value.methods == methods
    return required.value.token


async def enrol_totp(mfa: Mfa, user: User, clock: FakeClock) -> tuple[str, list[str]]:
    enrolment = await mfa.begin_totp(user, PASSWORD, CLIENT, aal=2)
    codes = await mfa.confirm_totp(user, pyotp.TOTP(enrolment.secret).at(clock()), CLIENT, aal=2)
    clock.advance(seconds=30)
    return enrolment.secret, codes


# --- adding one ------------------------------------------------------------------------------------


async def test_registration_options_are_the_level_3_json_a_browser_parses(
    passkeys: Passkeys, user: User, store: MemoryStore
) -> None:
    options = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)

    assert json.loads(json.dumps(options)) == options  # JSON as it is
    assert options["rp"] == {"name": "doorward", "id": RP_ID}
    assert options["user"] == {"id": options["user"]["id"], "name": EMAIL, "displayName": EMAIL}  # type: ignore[index]
    assert len(unb64url(options["user"]["id"])) == 32  # type: ignore[index]
    assert len(unb64url(str(options["challenge"]))) == 32
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "preferred",
    }
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["timeout"] == 300_000
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]  # type: ignore[operator]
    # The challenge is kept as its digest only, bound to the user and the handle the options gave.
    (stored,) = store.data.ceremonies.values()
    challenge = unb64url(str(options["challenge"]))
    assert stored.digest == challenge_digest(challenge)
    assert (stored.user_id, stored.user_handle) == (user.id, unb64url(options["user"]["id"]))  # type: ignore[index]
    assert challenge not in repr(store.data).encode() and str(options["challenge"]) not in repr(store.data)


async def test_a_registration_stores_every_field_turns_the_second_step_on_mails_and_audits(
    passkeys: Passkeys, user: User, store: MemoryStore, deps: Deps, clock: FakeClock
) -> None:
    authenticator = key(aaguid=b"\xfb\xfc\x30\x07\x15\x4e\x4e\xcc\x8c\x0b\x6e\x02\x05\x57\xd7\xbd")
    options = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    info = await passkeys.register(user, authenticator.create(options), "  Laptop  ", CLIENT, aal=2)

    (stored,) = store.data.passkeys.values()
    assert info == PasskeyInfo(stored.id, "Laptop", clock(), None, False)
    assert len(stored.id) == 22
    assert stored.credential_id == authenticator.credential_id
    assert stored.public_key == authenticator.cose_key()
    assert (stored.sign_count, stored.transports) == (0, ("internal", "hybrid"))
    assert stored.aaguid == "fbfc3007-154e-4ecc-8c0b-6e020557d7bd"
    assert (stored.backup_eligible, stored.backed_up) == (False, False)
    assert stored.user_handle == authenticator.user_handle == unb64url(options["user"]["id"])  # type: ignore[index]
    assert current(store, user).mfa_enabled
    assert sent(deps)[-1] == ("passkey_added", EMAIL, "Laptop")
    assert events(deps)[-2:] == ["passkey.registration_started", "passkey.registered"]
    assert await passkeys.list(user) == [info]
    (ceremony,) = store.data.ceremonies.values()
    assert ceremony.used_at == clock()


async def test_every_passkey_of_an_account_has_one_user_handle_and_none_is_offered_twice(
    passkeys: Passkeys, user: User, accounts: Accounts, store: MemoryStore
) -> None:
    first, second = key(), key(synced=True, transports=("hybrid",))
    await add(passkeys, user, first)
    options = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    assert options["excludeCredentials"] == [
        {"id": first.id, "type": "public-key", "transports": ["internal", "hybrid"]}
    ]
    info = await passkeys.register(user, second.create(options), None, CLIENT, aal=2)
    assert (info.name, info.backed_up) == ("Passkey 2", True)
    assert first.user_handle == second.user_handle
    assert {p.user_handle for p in store.data.passkeys.values()} == {first.user_handle}
    other = await accounts.register(OTHER_EMAIL, OTHER_PASSWORD)
    assert other is not None
    theirs = await passkeys.registration_options(other, OTHER_PASSWORD, CLIENT, aal=2)
    assert theirs["user"]["id"] != b64url(first.user_handle or b"")  # type: ignore[index]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda a, o: a.create(o, origin="https://evil.example"), id="wrong-origin"),
        pytest.param(lambda a, o: a.create(o, rp_id="evil.example"), id="wrong-rp-id"),
        pytest.param(lambda a, o: a.create(o, up=False), id="no-user-presence"),
        pytest.param(lambda a, o: a.create(o, challenge=b64url(b"c" * 32)), id="unknown-challenge"),
        pytest.param(lambda a, o: {**a.create(o), "rawId": b64url(b"other")}, id="id-not-raw-id"),
        pytest.param(lambda a, o: {"id": "x"}, id="malformed"),
        pytest.param(lambda a, o: "not json", id="not-json"),
        pytest.param(
            lambda a, o: {**a.create(o), "response": {**a.create(o)["response"], "clientDataJSON": "!!"}},
            id="bad-base64",
        ),
    ],
)
async def test_a_registration_that_fails_a_check_is_refused_and_audited(
    passkeys: Passkeys, user: User, store: MemoryStore, deps: Deps, tamper: Any
) -> None:
    options = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    with pytest.raises(PasskeyInvalid):
        await passkeys.register(user, tamper(key(), options), None, CLIENT, aal=2)
    assert store.data.passkeys == {}
    assert not current(store, user).mfa_enabled
    assert events(deps)[-1] == "passkey.register_failed"


async def test_a_registration_answers_only_its_own_users_fresh_register_challenge(
    passkeys: Passkeys, user: User, accounts: Accounts, store: MemoryStore, clock: FakeClock
) -> None:
    other = await accounts.register(OTHER_EMAIL, OTHER_PASSWORD)
    assert other is not None
    theirs = await passkeys.registration_options(other, OTHER_PASSWORD, CLIENT, aal=2)
    with pytest.raises(PasskeyInvalid):  # another user's challenge
        await passkeys.register(user, key().create(theirs), None, CLIENT, aal=2)
    login = await passkeys.login_options()
    with pytest.raises(PasskeyInvalid):  # a challenge of another ceremony
        await passkeys.register(user, key().create({**login, "user": theirs["user"]}), None, CLIENT, aal=2)
    options = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    clock.advance(minutes=5)
    with pytest.raises(PasskeyInvalid):  # expired
        await passkeys.register(user, key().create(options), None, CLIENT, aal=2)
    options = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    response = key().create(options)
    await passkeys.register(user, response, None, CLIENT, aal=2)
    with pytest.raises(PasskeyInvalid):  # used: a replay
        await passkeys.register(user, response, None, CLIENT, aal=2)
    assert len(store.data.passkeys) == 1


async def test_the_same_credential_is_registered_once(
    passkeys: Passkeys, user: User, store: MemoryStore
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    with pytest.raises(PasskeyInvalid):
        await add(passkeys, user, authenticator)
    assert len(store.data.passkeys) == 1


async def test_adding_one_takes_the_current_password(
    passkeys: Passkeys, user: User, store: MemoryStore
) -> None:
    with pytest.raises(InvalidCurrentPassword):
        await passkeys.registration_options(user, "not the password at all", CLIENT, aal=2)
    with pytest.raises(InvalidCurrentPassword):
        await passkeys.registration_options(user, "\x00", CLIENT, aal=2)
    assert store.data.ceremonies == {}


async def test_an_account_has_at_most_twenty_passkeys(
    passkeys: Passkeys, user: User, store: MemoryStore
) -> None:
    for _ in range(MAX_PASSKEYS - 1):
        await add(passkeys, user, key())
    late = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)  # the 20th may begin twice
    await add(passkeys, user, key())
    with pytest.raises(PasskeyLimit):
        await passkeys.register(user, key().create(late), None, CLIENT, aal=2)
    with pytest.raises(PasskeyLimit):
        await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    assert len(store.data.passkeys) == MAX_PASSKEYS


async def test_a_name_is_at_most_64_characters_of_text(passkeys: Passkeys, user: User) -> None:
    for bad in ("x" * 65, "tab\there", "new\nline", "bidi\u202e"):
        with pytest.raises(InvalidRequest):
            await add(passkeys, user, key(), bad)
    info = await add(passkeys, user, key(), "é" * 64)
    assert info.name == "é" * 64
    renamed = await passkeys.rename(user, info.id, " Phone ")
    assert renamed == replace(info, name="Phone")
    assert await passkeys.list(user) == [renamed]
    for bad in ("", "   ", "x" * 65):
        with pytest.raises(InvalidRequest):
            await passkeys.rename(user, info.id, bad)


async def test_only_the_owner_renames_or_removes_a_passkey(
    passkeys: Passkeys, user: User, accounts: Accounts, store: MemoryStore
) -> None:
    info = await add(passkeys, user, key())
    other = await accounts.register(OTHER_EMAIL, OTHER_PASSWORD)
    assert other is not None
    for passkey_id in (info.id, "A" * 22, "not an id"):
        with pytest.raises(PasskeyNotFound):
            await passkeys.rename(other, passkey_id, "Mine")
        with pytest.raises(PasskeyNotFound):
            await passkeys.remove(other, passkey_id, OTHER_PASSWORD, CLIENT, aal=2)
    assert [p.name for p in store.data.passkeys.values()] == ["Passkey 1"]


# --- signing in with one alone ---------------------------------------------------------------------


async def test_login_options_name_no_account(passkeys: Passkeys, store: MemoryStore) -> None:
    options = await passkeys.login_options()
    assert options == {
        "challenge": options["challenge"],
        "timeout": 300_000,
        "rpId": RP_ID,
        "allowCredentials": [],
        "userVerification": "preferred",
    }
    (stored,) = store.data.ceremonies.values()
    assert (stored.user_id, stored.mfa_digest, stored.user_handle) == (None, None, None)
    assert stored.digest == challenge_digest(unb64url(str(options["challenge"])))


@pytest.mark.parametrize(("synced", "method"), [(False, "hwk"), (True, "swk")])
async def test_a_passkey_with_user_verification_signs_in_alone_at_aal2(
    passkeys: Passkeys,
    user: User,
    auth: Authenticator,
    store: MemoryStore,
    deps: Deps,
    clock: FakeClock,
    synced: bool,
    method: str,
) -> None:
    authenticator = key(synced=synced, counts=not synced)
    info = await add(passkeys, user, authenticator)
    clock.advance(minutes=1)

    result = await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)

    assert (result.session.aal, result.session.amr) == (2, (method, "user"))
    assert (result.user.id, result.mfa_enrollment_required) == (user.id, False)
    assert (await auth.check(result.token))[1] == result.session
    stored = store.data.passkeys[info.id]
    assert (stored.sign_count, stored.backed_up, stored.last_used_at) == (0 if synced else 1, synced, clock())
    assert events(deps)[-2:] == ["passkey.used", "login.succeeded"]
    assert last(deps, "login.succeeded")["aal"] == 2
    # A counting key signs the next login with the next count; a synced passkey says 0 every time.
    again = await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)
    assert again.session.aal == 2


async def test_a_replayed_assertion_is_refused(passkeys: Passkeys, user: User, deps: Deps) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    assertion = authenticator.get(await passkeys.login_options())
    await passkeys.login(assertion, CLIENT)
    with pytest.raises(InvalidCredentials):
        await passkeys.login(assertion, CLIENT)
    assert last(deps, "passkey.login_failed")["reason"] == "challenge"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"origin": "https://evil.example"}, "origin"),
        ({"origin": "http://doorward.example"}, "origin"),
        ({"rp_id": "evil.example"}, "RP ID"),
        ({"crossOrigin": True}, "cross-origin"),
        ({"user_handle": b"u" * 32}, "user_handle"),
        ({"type": "webauthn.create"}, "type"),
    ],
)
async def test_an_assertion_failing_a_check_is_the_seeds_401(
    passkeys: Passkeys, user: User, deps: Deps, store: MemoryStore, tamper: dict[str, Any], reason: str
) -> None:
    authenticator = key()
    info = await add(passkeys, user, authenticator)
    with pytest.raises(InvalidCredentials) as refused:
        await passkeys.login(authenticator.get(await passkeys.login_options(), **tamper), CLIENT)
    assert refused.value.text == "Invalid credentials"
    assert reason in str(last(deps, "passkey.login_failed")["reason"])
    assert store.data.passkeys[info.id].last_used_at is None
    assert store.data.sessions == {}


async def test_a_bad_signature_is_refused(passkeys: Passkeys, user: User, deps: Deps) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    authenticator.key = key().key  # the same credential id, another private key
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)
    assert "signature" in str(last(deps, "passkey.login_failed")["reason"])


@pytest.mark.parametrize("junk", [{}, "{", {"id": "x", "rawId": "x", "type": "public-key"}, {"response": 1}])
async def test_junk_is_the_seeds_401(passkeys: Passkeys, junk: Any) -> None:
    with pytest.raises(InvalidCredentials):
        await passkeys.login(junk, CLIENT)


async def test_a_challenge_of_another_ceremony_does_not_sign_in(
    passkeys: Passkeys, user: User, auth: Authenticator, deps: Deps
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    register = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(register), CLIENT)
    second = await passkeys.second_step_options(await password_step(auth, ("passkey",)))
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(second), CLIENT)
    with pytest.raises(InvalidCredentials):  # one of nobody's
        await passkeys.login(authenticator.get({"challenge": b64url(b"c" * 32)}), CLIENT)
    assert [e.detail["reason"] for e in audited(deps) if e.event == "passkey.login_failed"] == [
        "challenge"
    ] * 3


async def test_an_expired_challenge_does_not_sign_in(
    passkeys: Passkeys, user: User, clock: FakeClock
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    options = await passkeys.login_options()
    clock.advance(minutes=5)
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(options), CLIENT)


async def test_a_removed_passkey_no_longer_signs_in(
    passkeys: Passkeys, user: User, store: MemoryStore, deps: Deps
) -> None:
    authenticator, spare = key(), key()
    info = await add(passkeys, user, authenticator)
    await add(passkeys, user, spare)
    with pytest.raises(InvalidCurrentPassword):
        await passkeys.remove(user, info.id, "not the password at all", CLIENT, aal=2)

    await passkeys.remove(user, info.id, PASSWORD, CLIENT, aal=2)

    assert sent(deps)[-1] == ("passkey_removed", EMAIL, "Passkey 1")
    assert last(deps, "passkey.removed")["passkey_id"] == info.id
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)
    assert last(deps, "passkey.login_failed")["reason"] == "unknown_credential"
    assert (await passkeys.login(spare.get(await passkeys.login_options()), CLIENT)).session.aal == 2
    with pytest.raises(PasskeyNotFound):
        await passkeys.remove(user, info.id, PASSWORD, CLIENT, aal=2)


async def test_a_disabled_account_does_not_sign_in(
    passkeys: Passkeys, user: User, admin: Admin, deps: Deps, store: MemoryStore
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    await admin.disable_user(EMAIL)
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)
    assert last(deps, "passkey.login_failed") == {"reason": "disabled"}
    assert store.data.sessions == {}


@pytest.mark.parametrize("presented", [0, 2, 3])
async def test_a_sign_count_going_backwards_is_refused_audited_and_mailed(
    passkeys: Passkeys, user: User, deps: Deps, store: MemoryStore, presented: int
) -> None:
    authenticator = key()
    info = await add(passkeys, user, authenticator)
    authenticator.sign_count = 2
    await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)  # signs 3
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(await passkeys.login_options(), sign_count=presented), CLIENT)
    assert last(deps, "passkey.sign_count_regressed") == {
        "passkey_id": info.id,
        "stored": 3,
        "presented": presented,
    }
    assert last(deps, "passkey.login_failed")["reason"] == "sign_count_regressed"
    assert sent(deps)[-1] == ("passkey_cloned", EMAIL, "Passkey 1")
    assert store.data.passkeys[info.id].sign_count == 3
    # The genuine key, counting on, still signs in.
    authenticator.sign_count = 3
    assert (await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)).session.aal == 2


async def test_a_key_that_counts_nothing_is_no_clone(passkeys: Passkeys, user: User, deps: Deps) -> None:
    authenticator = key(counts=False)
    await add(passkeys, user, authenticator)
    for _ in range(2):
        assert (
            await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)
        ).session.aal == 2
    assert "passkey.sign_count_regressed" not in events(deps)


async def test_failed_passkey_logins_count_against_the_client(passkeys: Passkeys, user: User) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    for _ in range(100):  # ThrottlePolicy.client_failures
        with pytest.raises(InvalidCredentials):
            await passkeys.login({}, CLIENT)
    with pytest.raises(TooManyAttempts):
        await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)
    elsewhere = replace(CLIENT, address="192.0.2.2")
    assert (
        await passkeys.login(authenticator.get(await passkeys.login_options()), elsewhere)
    ).session.aal == 2


async def test_an_unverified_address_does_not_sign_in_when_verification_is_required(
    deps: Deps, user: User, store: MemoryStore
) -> None:
    authenticator = key()
    await add(Passkeys(deps, RP), user, authenticator)
    strict = Passkeys(replace(deps, account_policy=AccountPolicy(require_email_verification=True)), RP)
    with pytest.raises(EmailUnverified):
        await strict.login(authenticator.get(await strict.login_options()), CLIENT)
    store.data.users[user.id] = replace(
        current(store, user), email_verified_at=store.data.users[user.id].created_at
    )
    assert (await strict.login(authenticator.get(await strict.login_options()), CLIENT)).session.aal == 2


# --- without user verification: one factor ------------------------------------------------------


async def test_without_user_verification_an_account_with_the_app_takes_a_code_next(
    passkeys: Passkeys, user: User, mfa: Mfa, store: MemoryStore, deps: Deps, clock: FakeClock
) -> None:
    secret, codes = await enrol_totp(mfa, user, clock)
    authenticator = key()
    await add(passkeys, user, authenticator)

    with pytest.raises(MfaRequired) as required:
        await passkeys.login(authenticator.get(await passkeys.login_options(), uv=False), CLIENT)

    assert required.value.methods == ("totp", "recovery_code")  # not the passkey again
    assert store.data.sessions == {}
    assert store.data.challenges[token_digest(required.value.token)].first_factor == "hwk"
    with pytest.raises(PasskeyNotFound):
        await passkeys.second_step_options(required.value.token)
    result = await mfa.complete_login(required.value.token, CLIENT, code=pyotp.TOTP(secret).at(clock()))
    assert (result.session.aal, result.session.amr) == (2, ("hwk", "otp"))
    with pytest.raises(MfaRequired) as again:
        await passkeys.login(authenticator.get(await passkeys.login_options(), uv=False), CLIENT)
    with pytest.raises(MfaInvalid):  # the passkey cannot be its own second factor
        await mfa.complete_login(again.value.token, CLIENT, credential=authenticator.get({"challenge": "x"}))
    result = await mfa.complete_login(again.value.token, CLIENT, recovery_code=codes[0])
    assert result.session.amr == ("hwk", "otp")


async def test_without_user_verification_a_passkey_only_account_is_told_to_verify(
    passkeys: Passkeys, user: User, store: MemoryStore, deps: Deps
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    with pytest.raises(UserVerificationRequired):
        await passkeys.login(authenticator.get(await passkeys.login_options(), uv=False), CLIENT)
    assert store.data.sessions == {} and store.data.challenges == {}
    assert last(deps, "passkey.login_failed")["reason"] == "user_verification_required"


async def test_without_user_verification_an_account_without_a_second_factor_gets_aal1(
    passkeys: Passkeys, user: User, store: MemoryStore
) -> None:
    authenticator = key(synced=True)
    await add(passkeys, user, authenticator)
    store.data.users[user.id] = replace(current(store, user), mfa_enabled=False)  # e.g. set by hand
    result = await passkeys.login(authenticator.get(await passkeys.login_options(), uv=False), CLIENT)
    assert (result.session.aal, result.session.amr) == (1, ("swk",))


# --- as the second step ----------------------------------------------------------------------------


async def test_a_passkey_completes_a_password_login_at_aal2(
    passkeys: Passkeys,
    user: User,
    auth: Authenticator,
    mfa: Mfa,
    store: MemoryStore,
    deps: Deps,
    clock: FakeClock,
) -> None:
    authenticator, spare = key(), key(synced=True)
    await add(passkeys, user, authenticator)
    clock.advance(seconds=1)  # listed oldest first
    await add(passkeys, user, spare)
    token = await password_step(auth, ("passkey",))

    options = await passkeys.second_step_options(token)

    assert options["allowCredentials"] == [
        {"id": authenticator.id, "type": "public-key", "transports": ["internal", "hybrid"]},
        {"id": spare.id, "type": "public-key", "transports": ["internal", "hybrid"]},
    ]
    assert (options["rpId"], options["userVerification"]) == (RP_ID, "discouraged")
    (ceremony,) = [c for c in store.data.ceremonies.values() if c.mfa_digest is not None]
    assert (ceremony.user_id, ceremony.mfa_digest) == (user.id, token_digest(token))
    result = await mfa.complete_login(token, CLIENT, credential=authenticator.get(options, uv=False))
    assert (result.session.aal, result.session.amr) == (2, ("pwd", "hwk"))
    assert events(deps)[-2:] == ["passkey.used", "login.succeeded"]
    token = await password_step(auth, ("passkey",))
    result = await mfa.complete_login(
        token, CLIENT, credential=spare.get(await passkeys.second_step_options(token))
    )
    assert result.session.amr == ("pwd", "swk")


async def test_the_second_step_offers_every_method_the_account_has(
    passkeys: Passkeys, user: User, auth: Authenticator, mfa: Mfa, clock: FakeClock
) -> None:
    await enrol_totp(mfa, user, clock)
    await add(passkeys, user, key())
    await password_step(auth, ("totp", "recovery_code", "passkey"))


async def test_a_second_step_assertion_serves_its_own_sign_in_once(
    passkeys: Passkeys, user: User, accounts: Accounts, auth: Authenticator, mfa: Mfa, deps: Deps
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    first = await password_step(auth, ("passkey",))
    assertion = authenticator.get(await passkeys.second_step_options(first))
    await mfa.complete_login(first, CLIENT, credential=assertion)
    with pytest.raises(MfaTokenInvalid):  # that sign-in is done
        await mfa.complete_login(first, CLIENT, credential=assertion)
    second = await password_step(auth, ("passkey",))
    with pytest.raises(MfaInvalid):  # bound to the first sign-in
        await mfa.complete_login(second, CLIENT, credential=assertion)
    with pytest.raises(MfaInvalid):  # a login ceremony's challenge
        await mfa.complete_login(second, CLIENT, credential=authenticator.get(await passkeys.login_options()))
    other = await accounts.register(OTHER_EMAIL, OTHER_PASSWORD)
    assert other is not None
    theirs = key()
    await add(passkeys, other, theirs, password=OTHER_PASSWORD)
    with pytest.raises(MfaInvalid):  # a passkey of another account
        await mfa.complete_login(
            second, CLIENT, credential=theirs.get(await passkeys.second_step_options(second))
        )
    assert [e.detail.get("method") for e in audited(deps) if e.event == "mfa.code_failed"] == ["passkey"] * 3
    result = await mfa.complete_login(
        second, CLIENT, credential=authenticator.get(await passkeys.second_step_options(second))
    )
    assert result.session.aal == 2


async def test_wrong_passkeys_spend_the_mfa_token_like_wrong_codes(
    passkeys: Passkeys, user: User, auth: Authenticator, mfa: Mfa, clock: FakeClock
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    token = await password_step(auth, ("passkey",))
    options = await passkeys.second_step_options(token)
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(MfaInvalid):
            await mfa.complete_login(
                token, CLIENT, credential=authenticator.get(options, origin="https://evil.example")
            )
        clock.advance(seconds=5)  # past the throttle's wait
    with pytest.raises(MfaTokenInvalid):
        await mfa.complete_login(token, CLIENT, credential=authenticator.get(options))
    with pytest.raises(MfaTokenInvalid):
        await passkeys.second_step_options(token)


async def test_a_cloned_passkey_as_the_second_step_is_refused_and_mailed(
    passkeys: Passkeys, user: User, auth: Authenticator, mfa: Mfa, deps: Deps
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    authenticator.sign_count = 7
    await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)  # signs 8
    token = await password_step(auth, ("passkey",))
    with pytest.raises(MfaInvalid):
        await mfa.complete_login(
            token,
            CLIENT,
            credential=authenticator.get(await passkeys.second_step_options(token), sign_count=5),
        )
    assert sent(deps)[-1] == ("passkey_cloned", EMAIL, "Passkey 1")
    assert last(deps, "mfa.code_failed")["reason"] == "sign_count_regressed"


async def test_one_kind_of_second_factor_at_a_time(
    passkeys: Passkeys, user: User, auth: Authenticator, mfa: Mfa
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    token = await password_step(auth, ("passkey",))
    assertion = authenticator.get(await passkeys.second_step_options(token))
    with pytest.raises(InvalidRequest):
        await mfa.complete_login(token, CLIENT, code="123456", credential=assertion)
    with pytest.raises(MfaInvalid):  # no app on this account: a code matches nothing
        await mfa.complete_login(token, CLIENT, code="123456")


async def test_second_step_options_need_a_live_sign_in_of_an_account_with_a_passkey(
    passkeys: Passkeys, user: User, auth: Authenticator, mfa: Mfa, clock: FakeClock
) -> None:
    for junk in ("", "x" * 43):
        with pytest.raises(MfaTokenInvalid):
            await passkeys.second_step_options(junk)
    await enrol_totp(mfa, user, clock)
    with pytest.raises(PasskeyNotFound):
        await passkeys.second_step_options(await password_step(auth, ("totp", "recovery_code")))


# --- removing one: the last factor, and the flag ----------------------------------------------


async def test_the_last_factor_stays_while_mfa_is_required(
    deps: Deps, user: User, mfa: Mfa, store: MemoryStore, clock: FakeClock
) -> None:
    strict = replace(deps, account_policy=AccountPolicy(require_mfa=True))
    passkeys, auth = Passkeys(strict, RP), Authenticator(strict)
    assert auth.enrollment_required(user)
    first = await add(passkeys, user, key())
    assert not auth.enrollment_required(current(store, user))  # a passkey counts as a factor
    second = await add(passkeys, user, key())

    await passkeys.remove(user, first.id, PASSWORD, CLIENT, aal=2)
    with pytest.raises(LastFactor):
        await passkeys.remove(user, second.id, PASSWORD, CLIENT, aal=2)
    await enrol_totp(mfa, user, clock)
    await passkeys.remove(user, second.id, PASSWORD, CLIENT, aal=2)  # the app is left
    assert store.data.passkeys == {}
    assert current(store, user).mfa_enabled
    # Without the policy, the last one goes too.
    await add(Passkeys(deps, RP), user, key())


async def test_the_app_as_the_last_factor_stays_while_mfa_is_required(
    deps: Deps, user: User, store: MemoryStore, clock: FakeClock
) -> None:
    """The rule holds for every factor, not only passkeys: turning the app off must not leave an
    account the policy requires a second factor of with none."""
    strict = replace(deps, account_policy=AccountPolicy(require_mfa=True))
    mfa, passkeys = Mfa(strict, SecretBox([KEY]), RP), Passkeys(strict, RP)
    secret, _ = await enrol_totp(mfa, user, clock)

    with pytest.raises(LastFactor):
        await mfa.disable_totp(user, PASSWORD, pyotp.TOTP(secret).at(clock()), CLIENT, aal=2)
    assert current(store, user).mfa_enabled
    assert store.data.totp  # nothing was removed

    await add(passkeys, user, key())  # with a passkey left, the app may go
    clock.advance(seconds=30)
    await mfa.disable_totp(user, PASSWORD, pyotp.TOTP(secret).at(clock()), CLIENT, aal=2)
    assert current(store, user).mfa_enabled


async def test_the_app_stays_when_the_last_passkey_went_while_it_was_being_turned_off(
    deps: Deps, user: User, store: MemoryStore, clock: FakeClock
) -> None:
    """Turning the app off and removing the last passkey at once (two tabs): each saw the other
    factor before its password check; the one that writes second must find itself the last factor,
    as a passkey's removal already does, not leave the account with none under the policy."""
    strict = replace(deps, account_policy=AccountPolicy(require_mfa=True))
    mfa, passkeys = Mfa(strict, SecretBox([KEY]), RP), Passkeys(strict, RP)
    secret, _ = await enrol_totp(mfa, user, clock)
    await add(passkeys, user, key())
    store.before_next_write = lambda data: data.passkeys.clear()  # the removal commits meanwhile

    with pytest.raises(LastFactor):
        await mfa.disable_totp(user, PASSWORD, pyotp.TOTP(secret).at(clock()), CLIENT, aal=2)
    assert store.data.totp  # the app stays, and the sign-in it guards
    assert current(store, user).mfa_enabled


async def test_the_flag_follows_the_factors_left(
    passkeys: Passkeys, user: User, auth: Authenticator, mfa: Mfa, store: MemoryStore, clock: FakeClock
) -> None:
    secret, _ = await enrol_totp(mfa, user, clock)
    info = await add(passkeys, user, key())

    await mfa.disable_totp(user, PASSWORD, pyotp.TOTP(secret).at(clock()), CLIENT, aal=2)

    assert current(store, user).mfa_enabled  # the passkey keeps the second step
    await password_step(auth, ("passkey",))
    await passkeys.remove(user, info.id, PASSWORD, CLIENT, aal=2)
    assert not current(store, user).mfa_enabled
    result = await auth.login(EMAIL, PASSWORD, CLIENT)
    assert (result.session.aal, result.session.amr) == (1, ("pwd",))


async def test_the_admin_reset_removes_the_passkeys_too(
    passkeys: Passkeys, user: User, admin: Admin, store: MemoryStore, deps: Deps
) -> None:
    authenticator = key()
    await add(passkeys, user, authenticator)
    await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    await admin.reset_mfa(EMAIL)
    assert (store.data.passkeys, store.data.ceremonies) == ({}, {})
    assert not current(store, user).mfa_enabled
    assert last(deps, "mfa.admin_reset") == {"sessions_ended": 0, "passkeys_removed": 1}
    with pytest.raises(InvalidCredentials):
        await passkeys.login(authenticator.get(await passkeys.login_options()), CLIENT)


async def test_a_password_change_voids_a_set_up_it_allowed(
    passkeys: Passkeys, user: User, auth: Authenticator, accounts: Accounts
) -> None:
    options = await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
    result = await auth.login(EMAIL, PASSWORD, CLIENT)
    await accounts.change_password(
        result.user, result.session, PASSWORD, "a brand new passphrase for ada", CLIENT
    )
    with pytest.raises(PasskeyInvalid):
        await passkeys.register(user, key().create(options), None, CLIENT, aal=2)


async def test_prune_deletes_expired_passkey_challenges(
    passkeys: Passkeys, admin: Admin, store: MemoryStore, clock: FakeClock
) -> None:
    await passkeys.login_options()
    clock.advance(minutes=4)
    await passkeys.login_options()
    clock.advance(minutes=1)
    assert (await admin.prune())["webauthn_challenges"] == 1
    assert len(store.data.ceremonies) == 1


async def test_the_store_holds_no_challenge_in_clear(
    passkeys: Passkeys, user: User, store: MemoryStore
) -> None:
    authenticator = key()
    challenges = [
        await passkeys.registration_options(user, PASSWORD, CLIENT, aal=2),
        await passkeys.login_options(),
    ]
    await passkeys.register(user, authenticator.create(challenges[0]), None, CLIENT, aal=2)
    stored = repr(store.data)
    for options in challenges:
        raw = unb64url(str(options["challenge"]))
        assert str(options["challenge"]) not in stored
        assert repr(raw)[2:-1] not in stored
        assert challenge_digest(raw) in store.data.ceremonies
