"""The hashing socket's message format, written and read here for both of its sides.

One request per connection: a 4-byte big-endian length and a JSON object, answered the same way;
with ``"begun": true`` in the request, the answer is preceded by BEGUN, sent once a process takes it up.

    {"op": "verify", "profile": "owasp-2023", "key": "<hex>", "args": [stored or null, password], ...}
    {"op": "hash", ...,                                        "args": [password], ...}
    {"op": "for_import", ...,                                  "args": [stored], ...}
    -> {"result": ..., "seconds": <time hashing>} or {"error": "<DoorwardError subclass>", "message": "..."}
    {"op": "ping", "begun": true} -> {"result": "pong"}, answered without hashing (a health check's)

BEGUN is asked for, not always sent, so that workers of the previous release (which read no such byte)
still understand the new hashing processes that SIGHUP starts before it replaces them.

A hashing process reads a request from a blocking socket (``read_message``), a worker its answer on
the event loop (``read_message_async``); both collect it with one ``_Message``, so the format has one
reader. Imports no asyncio: a hashing process loads this module and must stay slim.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

LENGTH = struct.Struct(">I")
MAX_MESSAGE = 1 << 20
"""A request or an answer longer than this is refused (a password is at most a few KiB)."""

BEGUN = b"+"
"""What a hashing process sends before it computes a hash, then the answer: until this byte, the
worker may close the connection to give the hash up (the process skips a request so closed)."""

PING = {"op": "ping", "begun": True}
"""A request that a hashing process answers with PONG at once: it is alive and accepting."""
PONG = {"result": "pong"}

RECEIVE_BYTES = 65536
"""What the workers' side asks of each receive: an answer, whole, in one."""


def encode(message: dict[str, Any]) -> bytes:
    """A message as sent: its length, then its JSON."""
    body = json.dumps(message, separators=(",", ":")).encode()
    return LENGTH.pack(len(body)) + body


def length_of(prefix: bytes) -> int:
    """The length a message's prefix gives, or ConnectionResetError beyond MAX_MESSAGE."""
    length: int = LENGTH.unpack(prefix)[0]
    if length > MAX_MESSAGE:
        raise ConnectionResetError(f"a message of {length} bytes")
    return length


class _Message:
    """One message being received: its bytes so far, and how many more it needs."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._end: int | None = None  # the prefix's and the body's length, once the prefix is in

    def missing(self) -> int:
        """How many more bytes the message needs at least (0: it is complete)."""
        end = LENGTH.size if self._end is None else self._end
        return max(0, end - len(self._buffer))

    def add(self, chunk: bytes) -> None:
        self._buffer += chunk
        if self._end is None and len(self._buffer) >= LENGTH.size:
            self._end = LENGTH.size + length_of(bytes(self._buffer[: LENGTH.size]))

    def decoded(self) -> Any:
        """The message's JSON (ValueError if it is none)."""
        assert self._end is not None
        return json.loads(self._buffer[LENGTH.size : self._end])


def read_message(conn: socket.socket) -> Any:
    """One message from a blocking socket: no byte beyond it is read."""
    message = _Message()
    while missing := message.missing():
        chunk = conn.recv(missing)
        if not chunk:
            raise ConnectionResetError("closed early")
        message.add(chunk)
    return message.decoded()


async def read_message_async(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> Any:
    """One message from a non-blocking socket on ``loop``, usually in one receive."""
    message = _Message()
    while message.missing():
        chunk = await loop.sock_recv(sock, RECEIVE_BYTES)
        if not chunk:
            raise ConnectionResetError("the hashing process closed the connection")
        message.add(chunk)
    return message.decoded()
