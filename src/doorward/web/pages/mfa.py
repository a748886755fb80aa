"""Two-step verification on the account page: setting up an authenticator app, the recovery codes shown
once, new recovery codes, and turning it off. (The login's second step is ``pages.login``'s.)

The set-up answers its post with the secret, once: as a QR code drawn here as inline SVG (no script, no
image request, nothing the page CSP has to allow) and as text. Neither the secret nor a code ever goes
into an address; the confirm form carries the secret back in its body only so that a mistyped code can
show the same QR code again. The recovery codes are the answer to the post that made them, with a
``data:`` link that saves them as a text file: no route serves them, so nothing can serve them twice.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from doorward.core import totp
from doorward.core.errors import CodeInvalid, InvalidCurrentPassword
from doorward.core.models import User
from doorward.web.pages.forms import Fields, Refusal, account_action, on_account, submit
from doorward.web.pages.render import as_page, page, redirect
from doorward.web.security import csrf_token
from doorward.web.services import services_of
from doorward.web.transport import client_of

router = APIRouter(include_in_schema=False)

SECRET_SHAPE = re.compile(r"[A-Z2-7]{32}")
"""A secret as ``totp.new_secret`` makes them: the only thing the confirm form's ``secret`` may be
shown again as (anything else is not from us, and the set-up starts over)."""

CODES_FILE = "doorward-recovery-codes.txt"


def qr_svg(uri: str) -> Markup:
    """``uri`` as a QR code in inline SVG: dark modules on a light square with the quiet zone around it
    (scanners need the contrast, whatever the page's colour scheme). Sized by the stylesheet."""
    svg = segno.make(uri, error="m", micro=False).svg_inline(
        scale=1, border=4, dark="#000", light="#fff", omitsize=True, svgclass="qr", lineclass=None
    )
    # segno draws paths with presentation attributes, never style attributes: the CSP holds.
    labelled = svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1)
    return Markup(labelled)  # noqa: S704 - segno's own markup; the URI only shapes its path data


def grouped(secret: str) -> str:
    """The secret in groups of four, as people copy it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def codes_file(user: User, codes: Sequence[str]) -> str:
    """The "download as .txt" link: a ``data:`` URI (the page's CSP does not govern downloads)."""
    text = "\n".join(
        [
            f"doorward recovery codes for {user.email}",
            "Each code works once, in place of a code from your app; a new set replaces these.",
            "",
            *codes,
            "",
        ]
    )
    return "data:text/plain;charset=utf-8," + quote(text, safe="")


async def _setup_page(
    request: Request, user: User, secret: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """The pending secret as a QR code and as text, and the form that confirms it with a first code."""
    return page(
        request,
        "mfa_setup.html",
        status=status,
        title="Set up two-step verification",
        signed_in=True,
        csrf_token=await csrf_token(request),
        secret=secret,
        grouped=grouped(secret),
        qr=qr_svg(totp.otpauth_uri(secret, user.email)),
        **context,
    )


async def _codes_page(request: Request, user: User, codes: list[str], *, turned_on: bool) -> HTMLResponse:
    """New recovery codes, this once, with the link that saves them."""
    return page(
        request,
        "mfa_codes.html",
        title="Your recovery codes",
        signed_in=True,
        csrf_token=await csrf_token(request),
        codes=codes,
        download=codes_file(user, codes),
        download_name=CODES_FILE,
        turned_on=turned_on,
    )


@router.post("/account/mfa/setup")
@as_page
async def setup_form(request: Request) -> Response:
    """Start the set-up with the current password: a new pending secret (replacing one not confirmed)."""
    services = services_of(request)
    signed_in = await account_action(request, confine=False)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def begin(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        enrolment = await services.mfa.begin_totp(user, fields.get("password", ""), client, aal=current.aal)
        return await _setup_page(request, user, enrolment.secret)

    return await submit(
        request,
        begin,
        on_account(request, user, current, "mfa"),
        at={InvalidCurrentPassword: "mfa_password"},
    )


@router.post("/account/mfa/confirm")
@as_page
async def confirm_form(request: Request) -> Response:
    """Turn the pending secret on with a code from the app; answer with the recovery codes."""
    services = services_of(request)
    signed_in = await account_action(request, confine=False)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def confirm(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        codes = await services.mfa.confirm_totp(user, fields.get("code", ""), client, aal=current.aal)
        return await _codes_page(request, user, codes, turned_on=True)

    async def refused(fields: Fields, refusal: Refusal) -> Response:
        secret = fields.get("secret", "")
        if isinstance(refusal.error, CodeInvalid) and SECRET_SHAPE.fullmatch(secret):
            # A mistyped code: the same QR code again, the reason next to the field.
            errors = defaultdict(str, code=refusal.error.text)
            return await _setup_page(request, user, secret, status=refusal.status, errors=errors)
        return await on_account(request, user, current, "mfa")(fields, refusal)

    return await submit(request, confirm, refused)


@router.post("/account/mfa/recovery-codes")
@as_page
async def recovery_codes_form(request: Request) -> Response:
    """A new set of recovery codes for the current password; the old set stops working."""
    services = services_of(request)
    signed_in = await account_action(request)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def regenerate(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        codes = await services.mfa.regenerate_codes(user, fields.get("password", ""), client, aal=current.aal)
        return await _codes_page(request, user, codes, turned_on=False)

    return await submit(
        request,
        regenerate,
        on_account(request, user, current, "codes"),
        at={InvalidCurrentPassword: "codes_password"},
    )


@router.post("/account/mfa/disable")
@as_page
async def disable_form(request: Request) -> Response:
    """Turn two-step verification off with the current password and a code (the app's or a recovery code)."""
    services = services_of(request)
    signed_in = await account_action(request)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def disable(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        await services.mfa.disable_totp(
            user, fields.get("password", ""), fields.get("code", ""), client, aal=current.aal
        )
        return redirect("/account?done=mfa_off")

    return await submit(
        request,
        disable,
        on_account(request, user, current, "off"),
        at={InvalidCurrentPassword: "off_password", CodeInvalid: "off_code"},
    )
