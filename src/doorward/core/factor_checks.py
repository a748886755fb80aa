"""An account's factors: which it has, what proves each (the password again before a factor
changes, a code of the app whose secret the secret box keeps, a recovery code), and new recovery codes."""

from __future__ import annotations

import logging

from doorward.core import recovery_codes, totp
from doorward.core.deps import Deps
from doorward.core.errors import InvalidCurrentPassword, InvalidRequest
from doorward.core.models import AttemptState, Client, TotpFactor, User
from doorward.core.notices import count_failed_login
from doorward.core.passwords import Password
from doorward.core.ports import Transaction
from doorward.core.secret_box import SecretBox, SecretUndecryptable

_log = logging.getLogger("doorward.mfa")

PASSWORD_AMR = "pwd"  # noqa: S105 - RFC 8176: what a first step with the password proved
CODE_AMR = "otp"  # RFC 8176: a one-time code (from the app, or a recovery code)


async def second_factor_methods(
    tx: Transaction, user_id: int, first_factor: str = PASSWORD_AMR
) -> tuple[str, ...]:
    """What may complete a sign-in of this account begun with ``first_factor``: the app and its
    recovery codes when TOTP is on, a passkey when the account has one and the first step was the
    password (a passkey is not two factors with itself)."""
    factor = await tx.factors.totp(user_id)
    methods: list[str] = []
    if factor is not None and factor.confirmed_at is not None:
        methods += ["totp", "recovery_code"]
    if first_factor == PASSWORD_AMR and await tx.passkeys.for_user(user_id):
        methods.append("passkey")
    return tuple(methods)


async def has_factor(tx: Transaction, user_id: int) -> bool:
    """Whether the account has a second factor left (an active app or a passkey): what
    ``users.mfa_enabled`` must say after a factor went."""
    factor = await tx.factors.totp(user_id)
    return (factor is not None and factor.confirmed_at is not None) or bool(
        await tx.passkeys.for_user(user_id)
    )


def _context(user_id: int) -> bytes:
    """What a TOTP secret's blob is bound to: its row, so a blob copied to another account fails."""
    return b"totp:%d" % user_id


async def step_up(deps: Deps, user: User, password: str, client: Client) -> AttemptState:
    """The one re-authentication before a factor changes: the current password, checked as a
    password change checks it (throttled, a wrong one counted). The caller resets the account's
    failures when it is done, if the account has no second factor (else only a complete proof does)."""
    attempts = await deps.throttle.admit_login(user.email_canonical, client.address)
    try:
        secret = Password(password)
    except InvalidRequest as exc:
        raise InvalidCurrentPassword() from exc
    if not (await deps.verify(user.password_hash, secret)).ok:
        await count_failed_login(deps, user.email_canonical, user, client)
        deps.audit("mfa.step_up_failed", user_id=user.id, client=client.address)
        raise InvalidCurrentPassword()
    return attempts


class FactorChecks:
    """Codes checked against an account's factors (nothing used up here), and the box that keeps
    the app's secret encrypted at rest, bound to its account's row."""

    def __init__(self, deps: Deps, box: SecretBox) -> None:
        self._deps = deps
        self._box = box

    def seal(self, user_id: int, secret: str) -> bytes:
        """``secret`` encrypted for ``user_id``'s row, under the newest key."""
        return self._box.encrypt(secret.encode("ascii"), _context(user_id))

    def resealed(self, factor: TotpFactor, secret: str) -> bytes | None:
        """``secret`` sealed anew when the factor's blob was made under an old key; else None."""
        return None if self._box.is_current(factor.secret) else self.seal(factor.user_id, secret)

    async def active_totp(self, user_id: int) -> TotpFactor | None:
        """The account's confirmed TOTP factor, if any."""
        async with self._deps.store.read() as tx:
            factor = await tx.factors.totp(user_id)
        return factor if factor is not None and factor.confirmed_at is not None else None

    def secret(self, factor: TotpFactor) -> str | None:
        """The factor's secret in clear, or None (logged as an error) when no configured key opens it.

        The user then sees a wrong code, not a 500: a recovery code still works, and the operator
        is told that DOORWARD_SECRET_KEYS lost the key the secret was made with.
        """
        try:
            return self._box.decrypt(factor.secret, _context(factor.user_id)).decode("ascii")
        except SecretUndecryptable as exc:
            _log.error(
                "a TOTP secret cannot be decrypted: is its key missing from DOORWARD_SECRET_KEYS?",
                extra={"user_id": factor.user_id, "reason": str(exc)},
            )
            return None

    def matching_step(self, factor: TotpFactor, code: str) -> int | None:
        """The time step of the app ``code`` is, if it is one not used yet."""
        secret = self.secret(factor)
        if secret is None:
            return None
        return totp.matching_step(secret, code, self._deps.clock(), factor.last_step)

    async def matching_recovery_code(self, user_id: int, text: str) -> int | None:
        """The id of the unused recovery code ``text`` is, if any (one hash verification per code)."""
        normalised = recovery_codes.normalise(text)
        if normalised is None:
            return None
        async with self._deps.store.read() as tx:
            stored = await tx.factors.recovery_codes(user_id)
        candidate = Password(normalised)
        for code in stored:
            if (await self._deps.verify(code.code_hash, candidate)).ok:
                return code.id
        return None

    async def new_recovery_codes(self) -> tuple[list[str], list[str]]:
        """Fresh recovery codes as shown, and their hashes as stored (argon2id, on the hash pool)."""
        codes = recovery_codes.new_codes()
        hashes = []
        for code in codes:
            normalised = recovery_codes.normalise(code)
            assert normalised is not None
            hashes.append(await self._deps.hash(Password(normalised)))
        return codes, hashes
