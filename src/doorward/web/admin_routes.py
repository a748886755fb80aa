"""The admin API's accounts: search, one account's detail, and what an operator does to an account
(disable, enable, unlock, end its sessions, reset its second factors, mail a reset link, delete it).

Every route takes an admin key (web/admin_auth.py): a read key for the reads, a write key for the
rest. The use cases are the command line's (core/admin.py), named by id here; each action's audit
event carries the key's name, besides the ``admin.api_call`` event of the call itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from doorward.core.admin_json import account_json, user_summary
from doorward.core.admin_records import AccountDetail
from doorward.core.errors import InvalidRequest
from doorward.core.import_csv import read_import_csv
from doorward.web.admin_auth import (
    ADMIN_ERRORS,
    WRITE_ERRORS,
    AdminReader,
    AdminRoute,
    AdminWriter,
    actor_of,
)
from doorward.web.admin_schemas import AdminAccountDetailOut, AdminUserListOut, ImportOut, ImportRefusedOut
from doorward.web.body import media_type, read_limited
from doorward.web.responses import Envelope
from doorward.web.schemas import EndedOut, ErrorOut, OkOut, Text
from doorward.web.services import services_of

TAG = "admin"
router = APIRouter(prefix="/admin", tags=[TAG], default_response_class=Envelope, route_class=AdminRoute)

UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The account's id")]
PageLimit = Annotated[int, Query(ge=1, le=200)]
PageCursor = Annotated[Text | None, Query(max_length=200, description="From the last page")]

IMPORT_EXAMPLE = (
    "email,password_hash\nsha@example.com,6cf7aab8966309e320b82c25eff7c1a36b9001a544225c36cbecf6d6a8fff89f\n"
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "user_not_found: no account with this id"}
}


def read_route(summary: str, answer: type, description: str, *, names_account: bool = True) -> dict[str, Any]:
    """A read's route: its summary and answers, ``answer`` the success's (a read key suffices); a 404
    too when the call ``names_account`` (an id in the path, or ``user=``)."""
    return {
        "summary": summary,
        "response_model": None,
        "responses": {
            200: {"model": answer, "description": description},
            **(NOT_FOUND if names_account else {}),
            **ADMIN_ERRORS,
        },
    }


def page_body(name: str, items: list[dict[str, Any]], next_cursor: str | None) -> Envelope:
    """A page of a list: its ``items`` under ``name``, and the cursor of the next page (null: the last)."""
    return Envelope({"success": True, name: items, "nextCursor": next_cursor})


def account_body(detail: AccountDetail) -> dict[str, Any]:
    """One account, its state and its live sessions."""
    return {"success": True, **account_json(detail, user_summary(detail.user))}


@router.get(
    "/users",
    **read_route(
        "Search accounts by email prefix, a page at a time",
        AdminUserListOut,
        "A page, oldest first",
        names_account=False,
    ),
)
async def list_users(
    request: Request,
    key: AdminReader,
    query: Annotated[Text, Query(max_length=320, description="Email prefix (any case)")] = "",
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Envelope:
    page = await services_of(request).admin.list_users(query, limit=limit, cursor=cursor)
    return page_body("users", [user_summary(user) for user in page.users], page.next_cursor)


@router.post(
    "/users/import",
    summary="Import accounts with their password hashes (the CSV of `doorward users import`)",
    response_model=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": IMPORT_EXAMPLE}},
        }
    },
    responses={
        200: {"model": ImportOut, "description": "Imported, in one transaction"},
        400: {
            "model": ImportRefusedOut | ErrorOut,
            "description": "import_refused: lines were refused (listed) and skipInvalid is false, so "
            "nothing was imported; invalid_request: not CSV, not UTF-8, or the header lacks a column",
        },
        413: {"model": ErrorOut, "description": "payload_too_large: over DOORWARD_MAX_BODY_BYTES"},
        **WRITE_ERRORS,
    },
)
async def import_users(
    request: Request,
    key: AdminWriter,
    skip_invalid: Annotated[
        bool, Query(alias="skipInvalid", description="Import the valid lines even if some are refused")
    ] = False,
) -> Envelope:
    if media_type(request) != "text/csv":
        raise InvalidRequest("Send the file as Content-Type: text/csv")
    try:
        text = (await read_limited(request)).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest("The file is not UTF-8 text") from None
    rows = read_import_csv(text)
    report = await services_of(request).admin.import_users(
        rows, skip_invalid=skip_invalid, actor=actor_of(request, key)
    )
    skipped = [{"line": line, "reason": reason} for line, reason in report.skipped]
    if report.skipped and not skip_invalid:
        return Envelope(
            {
                "success": False,
                "error": f"{len(skipped)} line(s) refused; nothing imported",
                "code": "import_refused",
                "skipped": skipped,
            },
            status_code=400,
        )
    return Envelope({"success": True, "imported": report.imported, "skipped": skipped})


@router.get(
    "/users/{user_id}",
    **read_route("One account: its state, factors and live sessions", AdminAccountDetailOut, "The account"),
)
async def show_user(request: Request, user_id: UserId, key: AdminReader) -> Envelope:
    return Envelope(account_body(await services_of(request).admin.account(user_id)))


def _action(
    summary: str,
    answer: type[OkOut | EndedOut] = OkOut,
    refusals: dict[int, str] | None = None,
) -> dict[str, Any]:
    """An action's route on one account (a write key's): ``refusals`` are its own error answers, by
    status, with their description (the envelope's codes first)."""
    more = {status: {"model": ErrorOut, "description": text} for status, text in (refusals or {}).items()}
    return {
        "summary": summary,
        "response_model": None,
        "responses": {200: {"model": answer, "description": "Done"}, **NOT_FOUND, **WRITE_ERRORS, **more},
    }


@router.post("/users/{user_id}/disable", **_action("Disable an account and end its sessions", EndedOut))
async def disable_user(request: Request, user_id: UserId, key: AdminWriter) -> Envelope:
    ended = await services_of(request).admin.disable_user(user_id, actor=actor_of(request, key))
    return Envelope({"success": True, "ended": ended})


@router.post("/users/{user_id}/enable", **_action("Enable a disabled account again"))
async def enable_user(request: Request, user_id: UserId, key: AdminWriter) -> Envelope:
    await services_of(request).admin.enable_user(user_id, actor=actor_of(request, key))
    return Envelope({"success": True})


@router.post("/users/{user_id}/unlock", **_action("Lift a login wait or lockout"))
async def unlock_user(request: Request, user_id: UserId, key: AdminWriter) -> Envelope:
    await services_of(request).admin.unlock_user(user_id, actor=actor_of(request, key))
    return Envelope({"success": True})


@router.post("/users/{user_id}/sessions/revoke", **_action("End every session of an account", EndedOut))
async def revoke_sessions(request: Request, user_id: UserId, key: AdminWriter) -> Envelope:
    ended = await services_of(request).admin.revoke_sessions(user_id, actor=actor_of(request, key))
    return Envelope({"success": True, "ended": ended})


@router.post(
    "/users/{user_id}/mfa/reset",
    **_action(
        "Remove the second factors (app, recovery codes, passkeys), end every session, mail the user",
        EndedOut,
        {409: "mfa_not_enabled: the account has no second factor"},
    ),
)
async def reset_mfa(request: Request, user_id: UserId, key: AdminWriter) -> Envelope:
    ended = await services_of(request).admin.reset_mfa(user_id, actor=actor_of(request, key))
    return Envelope({"success": True, "ended": ended})


@router.post(
    "/users/{user_id}/password/reset",
    **_action(
        "Mail the account a password reset link (an earlier link stops working)",
        refusals={400: "account_disabled, invalid_request"},
    ),
)
async def mail_password_reset(request: Request, user_id: UserId, key: AdminWriter) -> Envelope:
    await services_of(request).admin.send_password_reset(user_id, actor=actor_of(request, key))
    return Envelope({"success": True})


@router.delete(
    "/users/{user_id}",
    **_action("Delete an account and every row of it; the audit trail keeps its id", EndedOut),
)
async def delete_user(request: Request, user_id: UserId, key: AdminWriter) -> Envelope:
    deleted = await services_of(request).admin.delete_user(user_id, actor=actor_of(request, key))
    return Envelope({"success": True, "ended": deleted.sessions_ended})
