"""Re-authentication: the one proof asked before a credential, the email or the account itself changes.

Every such call (a password change, a factor set up or removed, a new email, a deletion) goes
through ``reauthenticate``: the current password, and the app's code (or a recovery code) where the
caller asks for the second factor and the account has one. Throttled as a login, on the same
per-account counters: a wrong password or code counts as a failed login.

A change of a second factor also asks ``require_assurance`` of the session it comes from: once the
account has a factor, only a session that proved one (assurance level 2) adds, removes or renews one.
"""

from __future__ import annotations

from dataclasses import dataclass

from doorward.core import totp
from doorward.core.deps import Deps
from doorward.core.errors import Aal2Required, CodeInvalid, InvalidCurrentPassword, InvalidRequest
from doorward.core.factor_checks import FactorChecks, has_factor
from doorward.core.models import AttemptState, Client, User
from doorward.core.notices import count_failed_login
from doorward.core.passwords import Password


@dataclass(frozen=True)
class Proof:
    """What a re-authentication established: the password as given (for a change to compare with),
    and the account's attempt state, for the caller to reset once its change is done."""

    password: Password
    attempts: AttemptState
    second_factor: bool = False  # a code of the account's second factor was checked too


async def require_assurance(deps: Deps, user: User, aal: int) -> None:
    """Aal2Required when ``user`` has a second factor (the app on, or a passkey; its recovery codes
    live and die with the app) and the session asking (``aal``) did not prove one. Without a factor,
    level 1 enrols the first: the password is then all the account has, as at its sign-in."""
    if aal >= 2:
        return
    async with deps.store.read() as tx:
        if await has_factor(tx, user.id):
            raise Aal2Required()


async def reauthenticate(
    deps: Deps,
    user: User,
    password: str,
    client: Client,
    *,
    code: str | None = None,
    factors: FactorChecks | None = None,
    purpose: str,
    failed_event: str = "mfa.step_up_failed",
) -> Proof:
    """Check ``user``'s current ``password`` (InvalidCurrentPassword) and, given ``factors``, a
    ``code`` of the account's active app or one of its recovery codes (CodeInvalid, also when none
    is given). Nothing is used up: the caller's change is the act. TooManyAttempts while the
    account or client is throttled, before any hash. Each failure is counted and audited
    (``failed_event`` for the password, ``mfa.code_failed`` with ``purpose`` for the code)."""
    attempts = await deps.throttle.admit_login(user.email_canonical, client.address)
    try:
        secret = Password(password)
    except InvalidRequest as exc:
        raise InvalidCurrentPassword() from exc
    if not (await deps.verify(user.password_hash, secret)).ok:
        await count_failed_login(deps, user.email_canonical, user, client)
        deps.audit(failed_event, user_id=user.id, client=client.address, purpose=purpose)
        raise InvalidCurrentPassword()
    factor = await factors.active_totp(user.id) if factors is not None else None
    if factors is None or factor is None:
        return Proof(secret, attempts)
    given = code or ""
    if totp.clean_code(given) is None:  # not six digits: a recovery code, if anything
        proven = await factors.matching_recovery_code(user.id, given) is not None
    else:
        proven = factors.matching_step(factor, given) is not None
    if not proven:
        await count_failed_login(deps, user.email_canonical, user, client)
        deps.audit("mfa.code_failed", user_id=user.id, client=client.address, purpose=purpose)
        raise CodeInvalid()
    return Proof(secret, attempts, second_factor=True)
