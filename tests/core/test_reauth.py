"""core/reauth.py over the fakes: the one re-authentication every change of a credential, the email or
the account goes through, counted and throttled on the login's own per-account counters; and
core/account_care.py's use of it (an email change, a deletion)."""

from __future__ import annotations

import pytest

from doorward.core.account_care import AccountCare
from doorward.core.accounts import Accounts
from doorward.core.deps import Deps
from doorward.core.errors import Aal2Required, CodeInvalid, InvalidCurrentPassword, TooManyAttempts
from doorward.core.factor_checks import FactorChecks
from doorward.core.mfa import Mfa
from doorward.core.models import TokenPurpose
from doorward.core.reauth import reauthenticate, require_assurance
from doorward.core.secret_box import SecretBox
from tests.conftest import EMAIL, PASSWORD, FakeClock
from tests.core.conftest import CLIENT
from tests.core.test_mfa import KEY, Enrolled, events, now_code, sent
from tests.core.test_mfa import enrolled as enrolled  # a fixture
from tests.core.test_mfa import mfa as mfa  # the fixture ``enrolled`` takes
from tests.fakes import MemoryStore

WRONG = "not the password at all"


@pytest.fixture
def care(deps: Deps, accounts: Accounts) -> AccountCare:
    return AccountCare(deps, SecretBox([KEY]), accounts)


async def test_a_wrong_password_counts_as_a_failed_login_and_the_throttle_holds_it_back(
    accounts: Accounts, deps: Deps
) -> None:
    user = await accounts.register(EMAIL, PASSWORD)
    assert user is not None
    refused = 0
    for _ in range(8):
        try:
            await reauthenticate(deps, user, WRONG, CLIENT, purpose="test")
        except InvalidCurrentPassword:
            refused += 1
        except TooManyAttempts:
            break
    else:
        pytest.fail("never throttled")
    assert refused >= 1
    with pytest.raises(TooManyAttempts):  # the right password waits too: the login's counters
        await reauthenticate(deps, user, PASSWORD, CLIENT, purpose="test")
    assert "mfa.step_up_failed" in events(deps)


async def test_with_the_factors_asked_for_an_active_app_needs_its_code(
    enrolled: Enrolled, deps: Deps, clock: FakeClock
) -> None:
    factors = FactorChecks(deps, SecretBox([KEY]))
    with pytest.raises(CodeInvalid):
        await reauthenticate(deps, enrolled.user, PASSWORD, CLIENT, factors=factors, purpose="test")
    proof = await reauthenticate(
        deps,
        enrolled.user,
        PASSWORD,
        CLIENT,
        code=now_code(enrolled.secret, clock),
        factors=factors,
        purpose="test",
    )
    assert proof.second_factor
    recovery = await reauthenticate(
        deps, enrolled.user, PASSWORD, CLIENT, code=enrolled.codes[0], factors=factors, purpose="test"
    )
    assert recovery.second_factor
    # Without the factors asked for (a password change), the password alone is the proof.
    assert not (await reauthenticate(deps, enrolled.user, PASSWORD, CLIENT, purpose="test")).second_factor


async def test_a_factor_changes_from_level_one_only_while_the_account_has_none(
    accounts: Accounts, deps: Deps, mfa: Mfa, enrolled: Enrolled, clock: FakeClock
) -> None:
    fresh = await accounts.register("grace@example.com", PASSWORD)
    assert fresh is not None
    await require_assurance(deps, fresh, 1)  # no factor yet: level 1 enrols the first
    await require_assurance(deps, enrolled.user, 2)
    with pytest.raises(Aal2Required):
        await require_assurance(deps, enrolled.user, 1)
    with pytest.raises(Aal2Required):  # refused before the password is even checked
        await mfa.regenerate_codes(enrolled.user, WRONG, CLIENT, aal=1)
    with pytest.raises(Aal2Required):
        await mfa.disable_totp(enrolled.user, PASSWORD, now_code(enrolled.secret, clock), CLIENT, aal=1)
    assert "mfa.step_up_failed" not in events(deps)


async def test_an_email_change_mails_a_link_only_to_a_free_address(
    accounts: Accounts, care: AccountCare, deps: Deps, store: MemoryStore
) -> None:
    user = await accounts.register(EMAIL, PASSWORD)
    await accounts.register("grace@example.com", PASSWORD)
    assert user is not None
    await care.request_email_change(user, PASSWORD, "Grace@Example.com", CLIENT)
    await care.request_email_change(user, PASSWORD, "ada.new@example.com", CLIENT)
    await deps.background.drain()
    assert [(kind, to) for kind, to, _ in sent(deps)] == [
        ("email_change_notice", EMAIL),
        ("email_change_confirm", "ada.new@example.com"),
        ("email_change_notice", EMAIL),
    ]
    pending = [t for t in store.data.tokens.values() if t.purpose is TokenPurpose.EMAIL_CHANGE]
    assert [t.detail for t in pending] == ["ada.new@example.com"]
    with pytest.raises(InvalidCurrentPassword):
        await care.request_email_change(user, WRONG, "ada.other@example.com", CLIENT)


async def test_deleting_an_account_with_the_app_takes_its_code(
    enrolled: Enrolled, care: AccountCare, deps: Deps, store: MemoryStore, clock: FakeClock
) -> None:
    with pytest.raises(CodeInvalid):
        await care.delete(enrolled.user, PASSWORD, None, CLIENT)
    assert enrolled.user.id in store.data.users
    await care.delete(enrolled.user, PASSWORD, now_code(enrolled.secret, clock), CLIENT)
    assert enrolled.user.id not in store.data.users
    assert sent(deps)[-1] == ("account_deleted", EMAIL, None)
    assert "user.deleted" in events(deps)
