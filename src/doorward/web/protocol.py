"""The HTTP/1.1 connection ``doorward serve`` runs: uvicorn's httptools protocol, with limits on the request
head, deadlines for slow clients, and the JSON envelope for what the HTTP parser refuses (issue 21, 2-4).

uvicorn reads a request head of any size (httptools joins a header's pieces by copying: a 64 MiB header
took seconds and hundreds of MiB), never times out a client that sends slowly, and answers a malformed
request with a text/plain 400. Here the head is fed to the parser only up to DOORWARD_MAX_HEADER_BYTES,
the head and the body each have a deadline, and every refusal is an envelope of web/errors.py's table.
Named to uvicorn by its import string (cli/server.py), so every worker of ``serve --workers N`` runs it.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from doorward.config import Settings
from doorward.core.errors import DoorwardError, InvalidRequest
from doorward.logs import ACCESS_LOG
from doorward.web.errors import HeadersTooLarge, RequestTimeout, error_response
from doorward.web.headers import AnswerHeaders

LINGER_SECONDS = 2.0
"""After a refusal, how long what the client still sends is read and dropped before the socket closes:
closing with unread data sends a reset, which can destroy the answer before the client reads it."""


Refusal = tuple[bytes, bytes]
"""An answer's status line, and its headers and body but uvicorn's own (the Date)."""


@dataclass(frozen=True)
class _Transport:
    """This process's limits, and the refusals as bytes (all but uvicorn's Date header), built once."""

    max_head: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    invalid: Refusal
    too_large: Refusal
    timed_out: Refusal


def _refusal(error: DoorwardError, headers: AnswerHeaders) -> Refusal:
    response = error_response(error)
    headers.add(response.raw_headers)
    lines = b"".join(name + b": " + value + b"\r\n" for name, value in response.raw_headers)
    return STATUS_LINE[response.status_code], lines + b"connection: close\r\n\r\n" + response.body


@functools.cache
def _transport() -> _Transport:
    """From this worker's settings, as its app (web/app.py create_served_app) reads them."""
    settings = Settings()
    headers = AnswerHeaders.of(settings)
    return _Transport(
        max_head=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout=settings.header_timeout.total_seconds(),
        body_timeout=settings.body_timeout.total_seconds(),
        invalid=_refusal(InvalidRequest(), headers),
        too_large=_refusal(HeadersTooLarge(), headers),
        timed_out=_refusal(RequestTimeout(), headers),
    )


class _TooManyHeaders(Exception):
    """Raised in the parser's callback to refuse a head with more header lines than allowed."""


class DoorwardHttpProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol, with doorward's limits (one instance per connection).

    The head (request line and headers) must be at most ``max_head`` bytes with at most ``max_headers``
    header lines (431), and arrive within ``header_timeout`` of the connection's start or of the
    request's first byte; a body must arrive whole within ``body_timeout`` of its head (408). The wait
    between requests on a kept-alive connection stays uvicorn's keep-alive timeout. The deadlines are
    timers only when a head or body is left unfinished by a read: a request that comes whole in one
    read arms none. A refusal answers only where nothing was answered for the request, then closes.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.access_logger = ACCESS_LOG  # uvicorn's access line, without logging's machinery
        self.access_log = ACCESS_LOG.enabled
        self._limits = _transport()
        self._reading_head = True  # the bytes now coming are a request head's (or the wait for one)
        self._head_bytes = 0
        self._head_started: float | None = None  # loop time the unfinished head began
        self._body_started: float | None = None  # loop time the unfinished body's head ended
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False  # answered with a refusal: what follows is dropped, then the socket closed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = self.loop.time()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._head_started is None and self._body_started is None:
            self._head_started = self.loop.time()
        try:
            while data:
                if not self._reading_head:
                    self.parser.feed_data(data)
                    break
                # No more of a head than the limit reaches the parser: it would buffer all of it.
                room = self._limits.max_head - self._head_bytes
                piece, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
                self._head_bytes += len(piece)
                self.parser.feed_data(piece)
                # A pipelined head begun in a read fed whole as a body is counted from the next
                # read on: at most one read (256 KiB under uvloop) beyond the limit reaches the parser.
                if self._reading_head and self._head_bytes >= self._limits.max_head:
                    self.logger.info("request refused: head over %d bytes", self._limits.max_head)
                    self._refuse(self._limits.too_large)
                    return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            too_many = isinstance(exc.__context__, _TooManyHeaders)
            if too_many:
                self.logger.info("request refused: over %d header lines", self._limits.max_headers)
            else:
                self.logger.info("malformed request refused: %s", exc)
            self._refuse(self._limits.too_large if too_many else self._limits.invalid)
            return
        if self._timer is None:
            self._arm()

    # Parser callbacks: where a head and a body begin and end.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_started is None:
            self._head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        # Counted here, not per header line: the size limit already bounds what they hold.
        if len(self.headers) > self._limits.max_headers:
            raise _TooManyHeaders
        super().on_headers_complete()  # which may refuse the head (a path that is not ASCII)
        self._reading_head = False
        self._head_started = None
        self._body_started = self.loop.time()
        self._disarm()

    def on_message_complete(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        self._body_started = None
        self._disarm()
        super().on_message_complete()

    # Deadlines
    def _arm(self) -> None:
        if self._body_started is not None:
            deadline = self._body_started + self._limits.body_timeout
        elif self._head_started is not None:
            deadline = self._head_started + self._limits.header_timeout
        else:
            return
        self._timer = self.loop.call_at(deadline, self._on_timeout)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        self._timer = None
        if self._refused or self.transport.is_closing():
            return
        if self._answer_pending_before() or self._waiting_on_doorward():
            # Late because of doorward, not of the client: count from now.
            if self._body_started is not None:
                self._body_started = self.loop.time()
            else:
                self._head_started = self.loop.time()
            self._arm()
            return
        phase = "head" if self._body_started is None else "body"
        self.logger.info("request refused: its %s did not arrive in time", phase)
        self._refuse(self._limits.timed_out)

    def _waiting_on_doorward(self) -> bool:
        """Reading is paused (a body the app has not taken yet), or the client waits for 100 Continue."""
        cycle = self.cycle
        waiting = self._body_started is not None and cycle is not None and cycle.waiting_for_100_continue
        return self.flow.read_paused or waiting

    def _answer_pending_before(self) -> bool:
        """A request before the one being read still waits for its answer (pipelining)."""
        if self.pipeline:
            return True
        cycle = self.cycle
        return self._body_started is None and cycle is not None and not cycle.response_complete

    # Refusals
    def _refuse(self, answer: Refusal) -> None:
        """Answer ``answer`` if nothing was answered for this request, then close the connection."""
        self._refused = True
        self._disarm()
        if self._answer_pending_before():
            if self.pipeline or self.cycle is None:
                self.transport.close()
            else:  # the request before gets its answer, then the connection closes
                self.cycle.keep_alive = False
            return
        cycle = self.cycle
        if self._body_started is not None and cycle is not None:  # refusing this request's body
            if cycle.response_started:
                self.transport.close()  # answered already, or answering: nothing more can be said
                return
            cycle.disconnected = True  # the app, reading the body, sees the client gone
            cycle.message_event.set()
        status, rest = answer
        dates = b"".join(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        self.transport.write(status + dates + rest)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
