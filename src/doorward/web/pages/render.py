"""Pages as HTML: the templates, a page or a redirect as the answer, the error page, the notices."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from fastapi import Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from doorward.core.errors import DoorwardError
from doorward.core.passwords import MAX_PASSWORD_LENGTH
from doorward.web.errors import CrossSiteRequest, retry_headers, status_of
from doorward.web.services import services_of

P = ParamSpec("P")


NOTICES = {
    "registered": "Your account is ready. Log in to continue.",
    "verify": "Almost done: follow the link we sent to your email address, then log in.",
    "logged_out": "You have logged out.",
    "revoked": "That session has ended.",
    "gone": "That session had already ended.",
    "others_ended": "All your other sessions have ended.",
    "password_changed": "Your password has been changed; your other sessions have ended.",
    "password_reset": "Your new password is set and every session has ended. Log in with it now.",
    "reset_sent": "If an account uses that address, a link to set a new password is on its way.",
    "verified": "Your email address is confirmed. Log in to continue.",
    "verify_sent": "If an unconfirmed account uses that address, a new link is on its way.",
    "mfa_on": "Two-step verification is on: logging in now asks for a code from your app.",
    "mfa_off": "Two-step verification is off: logging in asks for your password only.",
    "codes_new": "Your new recovery codes are ready; the earlier ones no longer work.",
    "passkey_added": "Your passkey is added: use it to log in, or as the second step after your password.",
    "passkey_renamed": "Your passkey is renamed.",
    "passkey_removed": "Your passkey is removed.",
    "email_change_sent": "A link is on its way to the new address: follow it to make the change.",
    "email_changed": "Your new email address is in use; your other sessions have ended.",
    "email_reverted": "Every session has ended and your address stays. A link to set a new password is on "
    "its way.",
    "account_deleted": "Your account is deleted.",
}
"""What ``?done=`` may show: a fixed table, so nothing from the address bar is ever echoed."""


_templates = Environment(
    loader=PackageLoader("doorward.web", "templates"),
    autoescape=select_autoescape(("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    name: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """A page from ``templates/``; never cached, since most show who is logged in."""
    values: dict[str, Any] = {
        "notice": None,
        "signed_in": False,
        "csrf_token": "",
        "max_length": MAX_PASSWORD_LENGTH,
        "errors": defaultdict(str),
        "form_error": "",
        "form_errors": defaultdict(str),
        **context,
    }
    html = _templates.get_template(name).render(values)
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store", **(headers or {})})


def error_page(error: DoorwardError) -> Response:
    """The page for a refused or failed browser request (the CSRF middleware's 403 among them)."""
    refused = isinstance(error, CrossSiteRequest)
    heading = "Request refused" if refused else "Something went wrong"
    hint = (
        "The form came from another site, or the page was out of date. Go back, reload the page "
        "and try again."
        if refused
        else ""
    )
    return render(
        "message.html",
        status=status_of(error),
        headers=retry_headers(error),
        title=heading,
        heading=heading,
        text=error.text,
        hint=hint,
        link_href="/account",
        link_text="Back to your account",
    )


def as_page(endpoint: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Failures a route does not handle itself (database down, hash pool full) become a page, not JSON."""

    @functools.wraps(endpoint)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await endpoint(*args, **kwargs)
        except DoorwardError as exc:
            return error_page(exc)

    return guarded


def page(request: Request, name: str, **context: Any) -> HTMLResponse:
    """``render``, with what every form needs of the settings (the password rules, the verification)."""
    settings = services_of(request).settings
    return render(
        name,
        min_length=settings.password_min_length,
        verification=settings.require_email_verification,
        **context,
    )


def redirect(location: str, *cookies: str) -> Response:
    """303 to the next page (a form post's success), setting or clearing ``cookies``."""
    response = RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
    for cookie in cookies:
        response.headers.append("Set-Cookie", cookie)
    return response


def notice(request: Request) -> str | None:
    """The notice ``?done=`` names, if it names one of ``NOTICES``."""
    return NOTICES.get(request.query_params.get("done", ""))
