"""The audit trail's writer: a row the database refuses must not stop the rows after it."""

from __future__ import annotations

from datetime import UTC, datetime

from doorward.core.models import AuditEvent
from tests.conftest import app_for
from tests.db import fetch
from tests.web.test_mfa_services import services_of


async def test_a_row_the_database_refuses_does_not_wedge_the_trail(database_url: str) -> None:
    """Before, one such row (a client_address past its 64 characters, say) made every flush raise:
    its batch stayed at the head of the buffer and the flusher task died, so no event after it was
    ever written. Now the rows of a refused batch are written one by one, the refused one left out."""
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    async with app_for(database_url) as (app, _):
        sink = services_of(app).audit_sink
        await sink.flush()
        sink.record(AuditEvent(at, "test.before"))
        sink.record(AuditEvent(at, "test.refused", client="x" * 300))
        sink.record(AuditEvent(at, "test.after"))
        await sink.flush()
        sink.record(AuditEvent(at, "test.later"))
        await sink.flush()
        written = await fetch(
            database_url, "SELECT event FROM audit_events WHERE event LIKE 'test.%' ORDER BY id"
        )
        assert [event for (event,) in written] in (
            ["test.before", "test.after", "test.later"],  # PostgreSQL refuses the long address
            ["test.before", "test.refused", "test.after", "test.later"],  # SQLite stores it
        )
