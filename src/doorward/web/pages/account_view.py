"""The account page as a view: its sessions, passkeys and two-step state, with a refusal's text above
the form it concerns; and the confinement of DOORWARD_REQUIRE_MFA to that page. Apart from the routes
(``pages.account``) so that ``forms.account_action`` may confine any signed-in form post with it."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from starlette.responses import HTMLResponse, Response

from doorward.core.devices import describe_device
from doorward.core.errors import MfaEnrollmentRequired
from doorward.core.models import Session, User
from doorward.core.passkeys import PasskeyInfo
from doorward.web.pages.render import page
from doorward.web.security import csrf_token
from doorward.web.services import services_of


def _time(moment: datetime) -> tuple[str, str]:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M UTC"), utc.isoformat(timespec="seconds").replace("+00:00", "Z")


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


def _passkey_view(passkey: PasskeyInfo) -> dict[str, Any]:
    created, created_iso = _time(passkey.created_at)
    used, used_iso = _time(passkey.last_used_at) if passkey.last_used_at is not None else ("", "")
    return {
        "id": passkey.id,
        "name": passkey.name,
        "synced": passkey.backed_up,
        "created": created,
        "created_iso": created_iso,
        "last_used": used,
        "last_used_iso": used_iso,
    }


async def account_view(
    request: Request,
    user: User,
    current: Session,
    *,
    form_errors: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The account page. ``form_errors`` puts a refusal's text above the form it concerns: "password",
    "mfa" (the set-up, or the policy's refusal), "codes" (new recovery codes), "off" (turning off) or
    "passkeys" (renaming or removing one)."""
    services = services_of(request)
    enrolment_only = services.auth.enrollment_required(user)
    views = []
    if not enrolment_only:
        views = [_session_view(s, current) for s in await services.auth.list_sessions(user.id)]
        views.sort(key=lambda view: not view["current"])  # this browser first, the others newest first
    return page(
        request,
        "account.html",
        title="Your account",
        signed_in=True,
        user=user,
        sessions=views,
        mfa=await services.mfa.status(user),
        passkeys=[_passkey_view(p) for p in await services.passkeys.list(user)],
        enrolment_only=enrolment_only,
        password_compromised=user.password_compromised_at is not None,
        form_errors=defaultdict(str, form_errors or {}),
        csrf_token=await csrf_token(request),
        **context,
    )


async def enrolment_first(request: Request, user: User, current: Session) -> Response | None:
    """Under DOORWARD_REQUIRE_MFA, for an account without a second factor: the account page, which then
    offers only the set-up, at 403, in place of the action asked for. None when the action may go on."""
    if not services_of(request).auth.enrollment_required(user):
        return None
    refusal = MfaEnrollmentRequired()
    return await account_view(request, user, current, status=403, form_errors={"mfa": refusal.text})
