"""The hashing socket's message format (doorward/hashing/wire.py), read by either side's reader."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import pytest

from doorward.hashing.wire import LENGTH, MAX_MESSAGE, encode, read_message, read_message_async

MESSAGE = {"op": "verify", "profile": "testing", "key": "00ff", "args": [None, "correct horse é"]}


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair: what the test sends on the first, the reader reads from the second."""
    ends = socket.socketpair()
    ends[1].settimeout(5)  # a reader that waits for what never comes fails instead of hanging
    try:
        yield ends
    finally:
        for end in ends:
            end.close()


def read_async(sock: socket.socket) -> object:
    async def read() -> object:
        sock.setblocking(False)
        return await asyncio.wait_for(read_message_async(asyncio.get_running_loop(), sock), 5)

    return asyncio.run(read())


def test_a_message_is_its_length_then_its_compact_json() -> None:
    sent = encode(MESSAGE)
    body = json.dumps(MESSAGE, separators=(",", ":")).encode()
    assert sent == LENGTH.pack(len(body)) + body


def test_the_blocking_reader_reads_one_message_and_not_a_byte_more(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, reader = pair
    sender.sendall(encode(MESSAGE) + b"next")
    assert read_message(reader) == MESSAGE
    assert reader.recv(16) == b"next"


def test_the_async_reader_reads_a_message_that_arrives_in_pieces(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, reader = pair
    sent = encode(MESSAGE)
    pieces = [sent[:2], sent[2:7], sent[7:]]  # the prefix itself cut in two

    async def read_while_sent() -> object:
        reader.setblocking(False)
        reading = asyncio.ensure_future(read_message_async(asyncio.get_running_loop(), reader))
        for piece in pieces:
            await asyncio.sleep(0.01)
            sender.sendall(piece)
        return await asyncio.wait_for(reading, 5)

    assert asyncio.run(read_while_sent()) == MESSAGE


@pytest.mark.parametrize("side", ["blocking", "async"])
def test_a_connection_closed_before_the_whole_message_is_a_reset(
    pair: tuple[socket.socket, socket.socket], side: str
) -> None:
    sender, reader = pair
    sender.sendall(encode(MESSAGE)[:-1])
    sender.close()
    with pytest.raises(ConnectionResetError):
        read_message(reader) if side == "blocking" else read_async(reader)


@pytest.mark.parametrize("side", ["blocking", "async"])
def test_a_length_beyond_the_bound_is_refused_before_its_body(
    pair: tuple[socket.socket, socket.socket], side: str
) -> None:
    sender, reader = pair
    sender.sendall(LENGTH.pack(MAX_MESSAGE + 1))  # and nothing more: the reader must not wait for it
    with pytest.raises(ConnectionResetError, match=f"a message of {MAX_MESSAGE + 1} bytes"):
        read_message(reader) if side == "blocking" else read_async(reader)


@pytest.mark.parametrize("side", ["blocking", "async"])
def test_a_body_that_is_not_json_is_a_value_error(
    pair: tuple[socket.socket, socket.socket], side: str
) -> None:
    sender, reader = pair
    sender.sendall(LENGTH.pack(3) + b"{no")
    with pytest.raises(ValueError, match="Expecting"):
        read_message(reader) if side == "blocking" else read_async(reader)
