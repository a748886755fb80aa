"""The admin API's audit trail: ``GET /admin/audit``, newest first, filtered, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from doorward.core.admin_json import event_json
from doorward.core.admin_records import AuditQuery, UserRef
from doorward.core.errors import InvalidRequest
from doorward.web.admin_auth import AdminReader, AdminRoute
from doorward.web.admin_routes import TAG, PageCursor, PageLimit, page_body, read_route
from doorward.web.admin_schemas import AuditPageOut
from doorward.web.responses import Envelope
from doorward.web.schemas import Text
from doorward.web.services import services_of

router = APIRouter(prefix="/admin", tags=[TAG], default_response_class=Envelope, route_class=AdminRoute)

TIME = "A date (2026-12-01, midnight UTC) or an ISO 8601 time (2026-12-01T09:30:00Z); UTC unless it says"


def moment(text: str | None, name: str) -> datetime | None:
    """A query parameter's time, aware UTC; InvalidRequest naming the parameter if it is none."""
    if text is None or not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: before year 1 or after 9999 in UTC
        raise InvalidRequest(f"{name} must be a date or an ISO 8601 time") from None


def user_ref(text: str | None) -> UserRef | None:
    """``user=``: an account's id (digits; a deleted account's events are found so), else its email."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else text


@router.get(
    "/audit",
    **read_route("The audit trail, newest first, a page at a time", AuditPageOut, "A page of events"),
)
async def audit(
    request: Request,
    key: AdminReader,
    user: Annotated[
        Text | None, Query(max_length=320, description="An account's id, or its email (an existing account)")
    ] = None,
    event: Annotated[Text | None, Query(max_length=64, description="An event's exact name")] = None,
    since: Annotated[Text | None, Query(max_length=64, description=f"From (inclusive). {TIME}")] = None,
    until: Annotated[Text | None, Query(max_length=64, description=f"Before (exclusive). {TIME}")] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Envelope:
    query = AuditQuery(
        user=user_ref(user),
        event=event or None,
        since=moment(since, "since"),
        until=moment(until, "until"),
        limit=limit,
        cursor=cursor,
    )
    page = await services_of(request).admin.audit_events(query)
    return page_body("events", [event_json(entry) for entry in page.events], page.next_cursor)
