"""What a browser posts: its form, read within the body limit, and the session its cookie names."""

from __future__ import annotations

from fastapi import Request

from doorward.core.errors import InvalidRequest, InvalidSession, TooManyAttempts
from doorward.core.models import Session, User
from doorward.web.body import media_type, parse_form, read_limited
from doorward.web.security import SESSIONLESS_API
from doorward.web.services import services_of
from doorward.web.transport import session_token

ORIGIN_ONLY_FORMS = frozenset(f"{path}/form" for path in SESSIONLESS_API)
"""Form posts that need no session: the CSRF middleware checks their Origin only."""


def wait_text(error: TooManyAttempts) -> str:
    """A throttled form's message, with the wait in words."""
    unit = "second" if error.retry_after == 1 else "seconds"
    return f"Too many attempts, try again in {error.retry_after} {unit}"


async def read_form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form body, read within the body limit; the first value of each wins."""
    if media_type(request) != "application/x-www-form-urlencoded":
        raise InvalidRequest()
    try:
        return parse_form(await read_limited(request))
    except ValueError as exc:
        raise InvalidRequest() from exc


async def signed_in_as(request: Request) -> tuple[User, Session] | None:
    """The user and session of the browser's cookie (or bearer token); None without a valid one."""
    token = session_token(request)
    if token is None:
        return None
    try:
        return await services_of(request).auth.check(token)
    except InvalidSession:
        return None
