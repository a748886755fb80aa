"""What a browser posts: its form, read within the body limit, and the session its cookie names;
``account_action``, what every signed-in page of the account asks first; ``submit``, the one way a
form post runs: read the form, act on it, or show it again with the refusal (``on_account``: the
account page's forms)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from doorward.core.errors import DoorwardError, InvalidRequest, InvalidSession, TooManyAttempts
from doorward.core.models import Session, User
from doorward.web.body import media_type, parse_form, read_limited
from doorward.web.errors import retry_headers, status_of
from doorward.web.pages.account_view import account_view, enrolment_first
from doorward.web.pages.render import redirect
from doorward.web.security import SESSIONLESS_API
from doorward.web.services import services_of
from doorward.web.transport import session_token

SECOND_STEP_FORM = "/login/mfa/form"
"""A login's second step: the code for the sign-in its hidden ``mfa_token`` names."""

PASSKEY_LOGIN_FORM = "/login/passkey/form"
"""A sign-in with a passkey alone: the assertion the script got, in a form field."""

ORIGIN_ONLY_FORMS = frozenset({f"{path}/form" for path in SESSIONLESS_API} | {SECOND_STEP_FORM})
"""Form posts that need no session: the CSRF middleware checks their Origin only. The second step is
one of them even if the JSON ``/login/mfa`` is not listed as sessionless: like the password form, it
reads no session (it opens one), and a browser may come to it carrying an older session's cookie."""


async def read_form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form body, read within the body limit; the first value of each wins.

    A NUL (%00) anywhere is refused, as the JSON bodies refuse it (schemas.Text): PostgreSQL takes no
    NUL in text, so it would otherwise end a login in a 500 or a mailed link's lookup in an error."""
    if media_type(request) != "application/x-www-form-urlencoded":
        raise InvalidRequest()
    try:
        fields = parse_form(await read_limited(request))
    except ValueError as exc:
        raise InvalidRequest() from exc
    if any("\x00" in key or "\x00" in value for key, value in fields.items()):
        raise InvalidRequest()
    return fields


async def signed_in_as(request: Request) -> tuple[User, Session] | None:
    """The user and session of the browser's cookie (or bearer token); None without a valid one."""
    token = session_token(request)
    if token is None:
        return None
    try:
        return await services_of(request).auth.check(token)
    except InvalidSession:
        return None


async def account_action(request: Request, *, confine: bool = True) -> tuple[User, Session] | Response:
    """The user and session an account page acts for, or the answer in place of the action: to /login
    without a valid session; with ``confine``, the account page at 403 while DOORWARD_REQUIRE_MFA waits
    for a second factor (``enrolment_first``). The CSRF middleware has checked the post already."""
    signed_in = await signed_in_as(request)
    if signed_in is None:
        return redirect("/login")
    if confine and (confined := await enrolment_first(request, *signed_in)):
        return confined
    return signed_in


Fields = dict[str, str]


@dataclass(frozen=True)
class Refusal:
    """A refused form post, as its page shows it: the text next to the field it concerns
    (``errors``) or above the form (``form_error``), with the error's status and headers."""

    error: DoorwardError
    status: int
    headers: dict[str, str]
    errors: defaultdict[str, str]
    form_error: str

    @classmethod
    def of(cls, error: DoorwardError, at: Mapping[type[DoorwardError], str]) -> Refusal:
        """``at`` names the field an error class's text goes next to (the first match wins); any
        other text goes above the form, a throttle's with the wait in words."""
        errors: defaultdict[str, str] = defaultdict(str)
        form_error = ""
        field = next((name for kind, name in at.items() if isinstance(error, kind)), None)
        if field is not None:
            errors[field] = error.text
        elif isinstance(error, TooManyAttempts):
            unit = "second" if error.retry_after == 1 else "seconds"
            form_error = f"Too many attempts, try again in {error.retry_after} {unit}"
        else:
            form_error = error.text
        return cls(error, status_of(error), retry_headers(error), errors, form_error)


Refused = Callable[[Fields, Refusal], Awaitable[Response]]
"""What shows a refused form again (``submit``'s ``refused``)."""


def on_account(request: Request, user: User, current: Session, form: str) -> Refused:
    """A refusal of one of the account page's forms: the page again, the reason next to the field it
    concerns or above ``form`` (a name of ``account_view``'s ``form_errors``)."""

    async def refused(_fields: Fields, refusal: Refusal) -> Response:
        return await account_view(
            request,
            user,
            current,
            status=refusal.status,
            headers=refusal.headers,
            errors=refusal.errors,
            form_errors={form: refusal.form_error},
        )

    return refused


async def submit(
    request: Request,
    act: Callable[[Fields], Awaitable[Response]],
    refused: Refused,
    *,
    at: Mapping[type[DoorwardError], str] | None = None,
) -> Response:
    """Read the form and answer with ``act``; on a DoorwardError, with ``refused``, which shows the
    form again with the fields that were read ({} when the form itself was refused) and the refusal
    (``Refusal.of`` with ``at``)."""
    fields: Fields = {}
    try:
        fields = await read_form(request)
        return await act(fields)
    except DoorwardError as exc:
        return await refused(fields, Refusal.of(exc, at or {}))
