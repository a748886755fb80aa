"""The account page's passkeys: renaming and removing one are plain forms (no authenticator is
needed, so they work without the script); adding one is the script's, through the JSON API
(POST /passkeys/options, POST /passkeys) with the page's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.web.pages.forms import Fields, account_action, on_account, submit
from doorward.web.pages.render import as_page, redirect
from doorward.web.services import services_of
from doorward.web.transport import client_of

router = APIRouter(include_in_schema=False)


@router.post("/account/passkeys/{passkey_id}/rename")
@as_page
async def rename_passkey(request: Request, passkey_id: str) -> Response:
    signed_in = await account_action(request, confine=False)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def rename(fields: Fields) -> Response:
        await services_of(request).passkeys.rename(user, passkey_id, fields.get("name", ""))
        return redirect("/account?done=passkey_renamed")

    return await submit(request, rename, on_account(request, user, current, "passkeys"))


@router.post("/account/passkeys/{passkey_id}/remove")
@as_page
async def remove_passkey(request: Request, passkey_id: str) -> Response:
    services = services_of(request)
    signed_in = await account_action(request, confine=False)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def remove(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        await services.passkeys.remove(user, passkey_id, fields.get("password", ""), client, aal=current.aal)
        return redirect("/account?done=passkey_removed")

    return await submit(request, remove, on_account(request, user, current, "passkeys"))
