"""Structured logging: one JSON object per line, control characters escaped, UTC timestamps."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Renders a record as JSON. json.dumps escapes control characters, so values cannot forge lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):
            entry.update(audit)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "audit":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=True)


class RedactQueryStrings(logging.Filter):
    """Drops the query string from uvicorn's access lines: mailed links carry tokens there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            path = record.args[2]
            if "?" in path:
                record.args = (*record.args[:2], path.split("?", 1)[0] + "?[redacted]", *record.args[3:])
        return True


ACCESS_FLUSH_SECONDS = 0.1
"""How long an access line may wait to be written with those after it: a write to stderr cost about
as much as the rest of a session check on a file, and one a request was most of the line's cost."""

ACCESS_FLUSH_LINES = 512
"""Written at once when this many wait (about 70 KiB)."""


class AccessLog(logging.Logger):
    """uvicorn's access line, written as JsonFormatter writes it but at a fraction of the cost.

    uvicorn calls ``info('%s - "%s %s HTTP/%s" %d', client, method, path, version, status)`` per
    answer. Through logging that is a caller lookup, a LogRecord, a filter, a formatter walking the
    record, and a write and flush of its own: a third of a session check (issue 21 item 20). Here the
    line is put together from its five values (the query string redacted, the time formatted once a
    second), and the lines are written together, at most ``ACCESS_FLUSH_SECONDS`` after the first of
    them (and when the process exits), each with the time of its own answer.
    web/protocol.py hands this to uvicorn in place of the "uvicorn.access" logger.
    """

    def __init__(self) -> None:
        super().__init__("uvicorn.access")
        self.enabled = False  # configure_logging: the access log is on and INFO is logged
        self._handler: logging.StreamHandler[Any] | None = None
        self._pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        client, method, path, version, status = args
        if "?" in path:  # mailed links carry tokens there (as RedactQueryStrings)
            path = path.split("?", 1)[0] + "?[redacted]"
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime('{"ts": "%Y-%m-%dT%H:%M:%S')
        event = json.dumps(f'{client} - "{method} {path} HTTP/{version}" {status}')
        self._pending.append(
            f'{self._stamp}.{int((now - second) * 1000):03d}+00:00", "level": "info", '
            f'"logger": "uvicorn.access", "event": {event}}}\n'
        )
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_later(ACCESS_FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no loop: at once
                self.flush()
        elif len(self._pending) >= ACCESS_FLUSH_LINES:
            self.flush()  # the timer still comes, and finds nothing or the lines since

    def configure(self, handler: logging.StreamHandler[Any], *, enabled: bool) -> None:
        """Write to ``handler``'s stream (the lines waiting go to the one before), if ``enabled``."""
        self.flush()
        self._handler = handler
        self.enabled = enabled

    def flush(self) -> None:
        """Write the lines waiting, under the handler's lock as logging writes its own lines."""
        handler, lines = self._handler, self._pending
        if not lines or handler is None:
            return
        self._pending = []
        handler.acquire()
        try:
            with contextlib.suppress(OSError, ValueError):  # a closed stderr must not stop serving
                handler.stream.write("".join(lines))
                handler.stream.flush()
        finally:
            handler.release()


ACCESS_LOG = AccessLog()
"""This process's access log (see ``configure_logging``)."""
atexit.register(ACCESS_LOG.flush)


def configure_logging(level: str = "INFO", *, access_log: bool = True) -> None:
    """Send doorward's records (and uvicorn's) to stderr as JSON lines; uvicorn's access lines
    only with ``access_log``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    # Without a handler anywhere up its chain, uvicorn skips the access line altogether.
    access.propagate = access_log
    if not any(isinstance(f, RedactQueryStrings) for f in access.filters):
        access.addFilter(RedactQueryStrings())  # for uvicorn's own protocols: serve runs AccessLog
    ACCESS_LOG.configure(handler, enabled=access_log and root.isEnabledFor(logging.INFO))
