"""Browser pages: log in, register, the account page, and the form posts behind them.

Pages are plain HTML forms that work without JavaScript. A form posts to a path of its own (the JSON
API's bodies stay as they are) and a success answers 303 to the next page; a failure shows the same
form again with the reason. A browser session travels in an HttpOnly cookie (``web.cookies``) and is
never shown to a page; the CSRF defence is ``web.security``'s middleware, so routes here need none.
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from doorward.core.errors import (
    DoorwardError,
    EmailInvalid,
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    InvalidCurrentPassword,
    InvalidRequest,
    InvalidSession,
    PasswordRejected,
    TokenExpired,
    TokenInvalid,
    TooManyAttempts,
)
from doorward.core.models import Client, Session, User
from doorward.core.passwords import MAX_PASSWORD_LENGTH
from doorward.core.tokens import looks_like_token
from doorward.web.body import media_type, parse_form, read_limited
from doorward.web.cookies import cleared_cookie, session_cookie
from doorward.web.errors import CrossSiteRequest, retry_headers, status_of
from doorward.web.security import SESSIONLESS_API, csrf_token
from doorward.web.services import services_of
from doorward.web.transport import client_of, cookie_token, session_token

router = APIRouter(include_in_schema=False)

ORIGIN_ONLY_FORMS = frozenset(f"{path}/form" for path in SESSIONLESS_API)
"""Form posts that need no session: the CSRF middleware checks their Origin only."""

P = ParamSpec("P")

INVALID_CREDENTIALS = InvalidCredentials.message

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
}
"""What ``?done=`` may show: a fixed table, so nothing from the address bar is ever echoed."""

_templates = Environment(
    loader=PackageLoader("doorward.web", "templates"),
    autoescape=select_autoescape(("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
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


def _as_page(endpoint: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Failures a route does not handle itself (database down, hash pool full) become a page, not JSON."""

    @functools.wraps(endpoint)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await endpoint(*args, **kwargs)
        except DoorwardError as exc:
            return error_page(exc)

    return guarded


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    settings = services_of(request).settings
    return render(
        name,
        min_length=settings.password_min_length,
        verification=settings.require_email_verification,
        **context,
    )


def _redirect(location: str, *cookies: str) -> Response:
    response = RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
    for cookie in cookies:
        response.headers.append("Set-Cookie", cookie)
    return response


def _wait_text(error: TooManyAttempts) -> str:
    unit = "second" if error.retry_after == 1 else "seconds"
    return f"Too many attempts, try again in {error.retry_after} {unit}"


async def _form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form body, read within the body limit; the first value of each wins."""
    if media_type(request) != "application/x-www-form-urlencoded":
        raise InvalidRequest()
    try:
        return parse_form(await read_limited(request))
    except ValueError as exc:
        raise InvalidRequest() from exc


async def _signed_in(request: Request) -> tuple[User, Session] | None:
    token = session_token(request)
    if token is None:
        return None
    try:
        return await services_of(request).auth.check(token)
    except InvalidSession:
        return None


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def _time(moment: datetime) -> tuple[str, str]:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M UTC"), utc.isoformat(timespec="seconds").replace("+00:00", "Z")


def describe_device(user_agent: str | None) -> str:
    """A short name for a User-Agent ("Chrome on Linux"): enough to recognise a session, no full parser."""
    if not user_agent:
        return "Unknown device"
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return str(browser or system)
    return user_agent if len(user_agent) <= 60 else user_agent[:59] + "…"


def _session_view(session: Session, current: Session) -> dict[str, Any]:
    created, created_iso = _time(session.created_at)
    last_seen, last_seen_iso = _time(session.last_seen_at)
    expires, expires_iso = _time(session.expires_at)
    return {
        "id": session.id,
        "current": session.id == current.id,
        "device": describe_device(session.user_agent),
        "address": session.client_address or "an unknown address",
        "created": created,
        "created_iso": created_iso,
        "last_seen": last_seen,
        "last_seen_iso": last_seen_iso,
        "expires": expires,
        "expires_iso": expires_iso,
    }


# --- logging in and registering ------------------------------------------------------------------


@router.get("/login")
@_as_page
async def login_page(request: Request) -> Response:
    if await _signed_in(request):
        return _redirect("/account")
    return _page(request, "login.html", title="Log in", notice=_notice(request), email="")


@router.post("/login/form")
@_as_page
async def login_form(request: Request) -> Response:
    services = services_of(request)
    email = ""
    try:
        fields = await _form(request)
        email = fields.get("email", "")
        client = client_of(request, services.settings.trusted_networks)
        result = await services.auth.login(email, fields.get("password", ""), client)
    except DoorwardError as exc:
        status = status_of(exc)
        if isinstance(exc, TooManyAttempts):
            text = _wait_text(exc)
        elif isinstance(exc, EmailUnverified) or status >= 500:
            text = exc.text  # says nothing of the password: either it was right, or none was checked
        else:
            # Unknown email, wrong password, disabled account, malformed form: all the same answer.
            status, text = 400, INVALID_CREDENTIALS
        return _page(
            request,
            "login.html",
            status=status,
            headers=retry_headers(exc),
            title="Log in",
            email=email,
            form_error=text,
        )
    previous = cookie_token(request)
    if previous is not None:
        # This browser's earlier session is being replaced: end it rather than leave it orphaned.
        # Best effort: the new session exists, and a failure here must not hide it.
        with contextlib.suppress(DoorwardError):
            await services.auth.logout(previous)
    return _redirect("/account", session_cookie(result.token, secure=services.settings.cookie_secure))


@router.get("/register")
@_as_page
async def register_page(request: Request) -> Response:
    return _page(request, "register.html", title="Create an account", email="")


@router.post("/register/form")
@_as_page
async def register_form(request: Request) -> Response:
    services = services_of(request)
    email = ""
    errors: defaultdict[str, str] = defaultdict(str)
    form_error = ""
    try:
        fields = await _form(request)
        email = fields.get("email", "")
        client = client_of(request, services.settings.trusted_networks)
        await services.accounts.register(email, fields.get("password", ""), client)
    except DoorwardError as exc:
        if isinstance(exc, PasswordRejected):
            errors["password"] = exc.text
        elif isinstance(exc, EmailInvalid | EmailTaken):
            errors["email"] = exc.text
        else:
            form_error = _wait_text(exc) if isinstance(exc, TooManyAttempts) else exc.text
        return _page(
            request,
            "register.html",
            status=status_of(exc),
            headers=retry_headers(exc),
            title="Create an account",
            email=email,
            errors=errors,
            form_error=form_error,
        )
    done = "verify" if services.settings.require_email_verification else "registered"
    return _redirect(f"/login?done={done}")


@router.post("/logout/form")
@_as_page
async def logout_form(request: Request) -> Response:
    services = services_of(request)
    token = session_token(request)
    if token is not None:
        await services.auth.logout(token)
    return _redirect("/login?done=logged_out", cleared_cookie(secure=services.settings.cookie_secure))


# --- the account page ----------------------------------------------------------------------------


@router.get("/account")
@_as_page
async def account_page(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return _redirect("/login")
    user, current = signed_in
    return await _account(request, user, current, notice=_notice(request))


async def _account(request: Request, user: User, current: Session, **context: Any) -> HTMLResponse:
    sessions = await services_of(request).auth.list_sessions(user.id)
    views = [_session_view(s, current) for s in sessions]
    views.sort(key=lambda view: not view["current"])  # this browser first, the others newest first
    return _page(
        request,
        "account.html",
        title="Your account",
        signed_in=True,
        user=user,
        sessions=views,
        csrf_token=await csrf_token(request),
        **context,
    )


@router.post("/account/sessions/revoke-others")
@_as_page
async def revoke_other_sessions(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return _redirect("/login")
    user, current = signed_in
    await services_of(request).auth.logout_all(user.id, keep_session_id=current.id)
    return _redirect("/account?done=others_ended")


@router.post("/account/sessions/{session_id}/revoke")
@_as_page
async def revoke_session(request: Request, session_id: str) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return _redirect("/login")
    user, current = signed_in
    if session_id == current.id:
        return await logout_form(request)
    ended = await services_of(request).auth.end_session(user.id, session_id)
    return _redirect("/account?done=revoked" if ended else "/account?done=gone")


@router.post("/account/password")
@_as_page
async def change_password(request: Request) -> Response:
    services = services_of(request)
    signed_in = await _signed_in(request)
    if signed_in is None:
        return _redirect("/login")
    user, current = signed_in
    errors: defaultdict[str, str] = defaultdict(str)
    form_error = ""
    try:
        fields = await _form(request)
        client = client_of(request, services.settings.trusted_networks)
        await services.accounts.change_password(
            user, current, fields.get("current_password", ""), fields.get("new_password", ""), client
        )
    except DoorwardError as exc:
        if isinstance(exc, InvalidCurrentPassword):
            errors["current_password"] = exc.text
        elif isinstance(exc, PasswordRejected):
            errors["new_password"] = exc.text
        else:
            form_error = _wait_text(exc) if isinstance(exc, TooManyAttempts) else exc.text
        response = await _account(request, user, current, errors=errors, form_error=form_error)
        response.status_code = status_of(exc)
        response.headers.update(retry_headers(exc))
        return response
    return _redirect("/account?done=password_changed")


# --- password reset and email verification (the links in mails lead here) ----------------------

_RESET_REQUEST = {
    "title": "Forgot your password",
    "intro": "Enter the email address of your account and we will mail you a link to set a new password.",
    "action": "/password/reset/request/form",
    "button": "Send the link",
}
_VERIFY_REQUEST = {
    "title": "Confirm your email address",
    "intro": "Enter the email address you registered with and we will mail you a new confirmation link.",
    "action": "/email/verify/resend/form",
    "button": "Send a new link",
}


@router.get("/password/reset")
@_as_page
async def reset_page(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is None:
        return _page(request, "email_request.html", notice=_notice(request), email="", **_RESET_REQUEST)
    if not looks_like_token(token):
        return _page(
            request,
            "reset.html",
            status=400,
            title="Set a new password",
            token="",
            form_error=TokenInvalid().text,
            dead_link=True,
        )
    return _page(request, "reset.html", title="Set a new password", token=token, dead_link=False)


@router.post("/password/reset/request/form")
@_as_page
async def reset_request_form(request: Request) -> Response:
    accounts = services_of(request).accounts
    return await _ask_for_mail(
        request, accounts.request_password_reset, _RESET_REQUEST, "/password/reset?done=reset_sent"
    )


@router.post("/password/reset/confirm/form")
@_as_page
async def reset_confirm_form(request: Request) -> Response:
    services = services_of(request)
    token = ""
    try:
        fields = await _form(request)
        token = fields.get("token", "")
        await services.accounts.reset_password(token, fields.get("new_password", ""))
    except DoorwardError as exc:
        errors: defaultdict[str, str] = defaultdict(str)
        if isinstance(exc, PasswordRejected):
            errors["new_password"] = exc.text
        return _page(
            request,
            "reset.html",
            status=status_of(exc),
            headers=retry_headers(exc),
            title="Set a new password",
            token=token,
            errors=errors,
            form_error="" if errors else exc.text,
            dead_link=isinstance(exc, TokenInvalid | TokenExpired),
        )
    # Every session of the account ended, this browser's too (if it had one): forget its cookie.
    return _redirect("/login?done=password_reset", cleared_cookie(secure=services.settings.cookie_secure))


@router.get("/email/verify")
@_as_page
async def verify_page(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is None:
        return _page(request, "email_request.html", notice=_notice(request), email="", **_VERIFY_REQUEST)
    # A button, not an action on GET: mail scanners and link previews follow links.
    valid = looks_like_token(token)
    return _page(
        request,
        "verify.html",
        status=200 if valid else 400,
        title="Confirm your email address",
        token=token if valid else "",
        form_error="" if valid else TokenInvalid().text,
    )


@router.post("/email/verify/form")
@_as_page
async def verify_form(request: Request) -> Response:
    try:
        fields = await _form(request)
        await services_of(request).accounts.verify_email(fields.get("token", ""))
    except DoorwardError as exc:
        return _page(
            request,
            "verify.html",
            status=status_of(exc),
            headers=retry_headers(exc),
            title="Confirm your email address",
            token="",
            form_error=exc.text,
        )
    return _redirect("/login?done=verified")


@router.post("/email/verify/resend/form")
@_as_page
async def verify_resend_form(request: Request) -> Response:
    accounts = services_of(request).accounts
    return await _ask_for_mail(
        request, accounts.resend_verification, _VERIFY_REQUEST, "/email/verify?done=verify_sent"
    )


async def _ask_for_mail(
    request: Request, send: Callable[[str, Client], Awaitable[None]], texts: dict[str, str], done: str
) -> Response:
    """A form asking for a link by mail. The answer is the same whether or not the account exists."""
    services = services_of(request)
    email = ""
    try:
        fields = await _form(request)
        email = fields.get("email", "")
        await send(email, client_of(request, services.settings.trusted_networks))
    except DoorwardError as exc:
        errors: defaultdict[str, str] = defaultdict(str)
        form_error = ""
        if isinstance(exc, TooManyAttempts):
            form_error = _wait_text(exc)
        elif status_of(exc) == 400:
            errors["email"] = exc.text
        else:
            form_error = exc.text
        return _page(
            request,
            "email_request.html",
            status=status_of(exc),
            headers=retry_headers(exc),
            email=email,
            errors=errors,
            form_error=form_error,
            **texts,
        )
    return _redirect(done)
