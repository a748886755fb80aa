"""The audit trail in the database, written in batches off the request path."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from doorward.core.errors import StorageUnavailable
from doorward.core.models import AuditEvent
from doorward.storage.store import SqlStore
from doorward.storage.tables import audit_events

_log = logging.getLogger("doorward.audit")
_INSERT = insert(audit_events)

BATCH = 200
"""Rows per insert transaction (see ``SqlAuditSink.flush``)."""


class SqlAuditSink:
    """Buffers events and inserts them in batches.

    Recording never waits for the database: under a flood of rejected logins, one insert per
    event would make the audit trail itself the bottleneck. The buffer is bounded; what it drops
    when full is counted and logged (every event is in the log in any case).
    """

    def __init__(self, store: SqlStore, capacity: int = 10_000) -> None:
        self._store = store
        self._buffer: deque[AuditEvent] = deque()
        self._capacity = capacity
        self.dropped = 0
        # One flush at a time: two would both insert the buffer's head, then both pop it (the
        # background flusher runs beside shutdown's flush and anyone reading the trail right away).
        self._flushing = asyncio.Lock()

    def record(self, event: AuditEvent) -> None:
        if len(self._buffer) >= self._capacity:
            self.dropped += 1
            return
        self._buffer.append(event)

    async def flush(self) -> int:
        """Write what is buffered; on a database fault keep it for the next try. Return rows written.

        In transactions of at most ``BATCH`` rows, yielding to the event loop between them: on
        SQLite the inserts run on the loop's thread (loopsqlite.py), and a flood's half second of
        events in one go would hold every request behind it for milliseconds.
        """
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        written = 0
        while self._buffer:
            batch = list(itertools.islice(self._buffer, BATCH))
            rows = [
                {
                    "at": e.at,
                    "event": e.event,
                    "user_id": e.user_id,
                    "client_address": e.client,
                    "detail": json.dumps(e.detail, default=str, sort_keys=True),
                }
                for e in batch
            ]
            try:
                async with self._store.transaction() as conn:
                    await conn.execute(_INSERT, rows)
            except StorageUnavailable:
                _log.warning("audit events kept for the next flush", extra={"pending": len(self._buffer)})
                break
            except DBAPIError:
                # A row the data refuses would stay at the head of the buffer and fail every flush
                # (and end the flusher): the batch goes row by row, the refused one logged and left.
                done, complete = await self._one_by_one(rows)
                written += done
                if not complete:
                    break
                continue
            for _ in batch:
                self._buffer.popleft()
            written += len(batch)
            await asyncio.sleep(0)
        if self.dropped:
            _log.warning("audit events dropped: buffer full", extra={"dropped": self.dropped})
            self.dropped = 0
        return written

    async def _one_by_one(self, rows: Sequence[Mapping[str, object]]) -> tuple[int, bool]:
        """Insert ``rows`` (the buffer's head) one transaction each, popping each row written or
        refused; rows written, and False if the database went away meanwhile (the rest kept)."""
        written = 0
        for row in rows:
            try:
                async with self._store.transaction() as conn:
                    await conn.execute(_INSERT, [row])
            except StorageUnavailable:
                _log.warning("audit events kept for the next flush", extra={"pending": len(self._buffer)})
                return written, False
            except DBAPIError as exc:
                _log.error(
                    "audit event refused by the database, left out",
                    extra={"event": row["event"], "error": type(getattr(exc, "orig", exc)).__name__},
                )
            else:
                written += 1
            self._buffer.popleft()
        return written, True

    async def run(self, interval: float = 0.5) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.flush()
