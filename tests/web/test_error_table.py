"""The one error table (web/errors.py): every error the core raises on purpose has a status of its
own there, so none reaches a client as the 500 of a bug."""

from __future__ import annotations

import inspect

import pytest

from doorward.core import errors, passkey_errors
from doorward.core.errors import DoorwardError
from doorward.web.errors import error_response, status_of

CORE_ERRORS = [
    cls
    for module in (errors, passkey_errors)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if issubclass(cls, DoorwardError) and cls is not DoorwardError
]
COMMAND_LINE_ONLY = {errors.UnrecognisedHash}  # only `users import` raises it, never a request


@pytest.mark.parametrize("cls", sorted(set(CORE_ERRORS) - COMMAND_LINE_ONLY, key=lambda c: c.__name__))
def test_every_core_error_has_a_status_below_500_or_a_503(cls: type[DoorwardError]) -> None:
    error = (
        cls(1)
        if cls is errors.TooManyAttempts
        else cls("t", ("totp",))
        if cls is errors.MfaRequired
        else cls()
    )
    assert status_of(error) != 500, cls.__name__
    assert error_response(error).status_code == status_of(error)


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (passkey_errors.PasskeyInvalid, 400),
        (passkey_errors.PasskeyLimit, 409),
        (errors.LastFactor, 409),
        (passkey_errors.PasskeyNotFound, 404),
        (passkey_errors.UserVerificationRequired, 401),
    ],
)
def test_the_passkey_errors_statuses(cls: type[DoorwardError], status: int) -> None:
    assert status_of(cls()) == status
