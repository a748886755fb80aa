"""Audit events: one per authentication attempt, throttle decision, session change and admin action.

Each is a structured log line at once and, through the sinks, a row in the audit table. Fields are
plain values: passwords and raw tokens are never passed here, and the log formatter escapes control
characters, so a crafted email cannot forge log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from doorward.core.clock import Clock, utc_now
from doorward.core.models import AuditEvent
from doorward.core.ports import AuditSink

_log = logging.getLogger("doorward.audit")


class Auditor:
    """Logs every event and hands it to the sinks."""

    def __init__(self, sinks: Sequence[AuditSink] = (), clock: Clock = utc_now) -> None:
        self._sinks = tuple(sinks)
        self._clock = clock

    def __call__(
        self, event: str, *, user_id: int | None = None, client: str | None = None, **detail: object
    ) -> None:
        self.record(event, user_id, client, detail)

    def record(
        self, event: str, user_id: int | None, client: str | None, detail: Mapping[str, object]
    ) -> None:
        """What calling does, with the fields in a mapping (built by the caller: an admin action's actor)."""
        _log.info(event, extra={"audit": {"user_id": user_id, "client": client, **detail}})
        record = AuditEvent(self._clock(), event, user_id, client, dict(detail))
        for sink in self._sinks:
            sink.record(record)
