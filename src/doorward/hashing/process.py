"""One hashing process of ``doorward serve --workers N``: ``python -m doorward.hashing.process``.

Started by the supervisor (doorward/serve/hash_processes.py); the workers ask it over the socket
(doorward/hashing/runner.py) in the format of doorward/hashing/wire.py. This module is what a hashing
process imports, and all it imports: the wire format, the loop that answers, and the hasher (no
asyncio, no logging, none of the web or storage layers), so that each process, one per core, costs
as little memory as an interpreter with argon2 can.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from typing import Any, get_args

from doorward.core.errors import DoorwardError
from doorward.core.password_hashes import HashOp, PasswordHasher
from doorward.core.passwords import Password
from doorward.core.priority import lower_priority
from doorward.core.profiles import PROFILES
from doorward.hashing.wire import BEGUN, PING, PONG, encode, read_message

OPS: tuple[HashOp, ...] = get_args(HashOp)
"""What a hashing process runs: these methods of a PasswordHasher."""

READ_SECONDS = 5.0
"""How long a hashing process waits for a request to arrive once its connection is accepted."""

PARENT_CHECK_SECONDS = 1.0
"""How often a hashing process waiting for work checks that the server that started it still runs."""

READY = b"ready\n"
"""What a hashing process writes to its stdout, a pipe to the server, once it is about to accept."""

BORN_BLOCKED = {signal.SIGUSR1, signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
"""Signals a new hashing process is born with blocked (serve/hash_processes.py, Hashers._spawn),
until ``serve`` has set them."""


def serve(listener: socket.socket, parent: int) -> None:
    """Answer hash requests, one at a time, until told to finish or the server is gone.

    SIGUSR1 tells it to finish: the hash it is computing is answered, then it exits. SIGTERM, SIGINT
    and SIGHUP are ignored: they reach the whole process group (Ctrl+C, a service manager stopping
    the server), and the workers still finishing their logins need the hashes. The server stops
    these processes after its workers; if it dies, they notice within PARENT_CHECK_SECONDS.
    """
    finishing = False

    def finish(_signum: int, _frame: object) -> None:
        nonlocal finishing
        finishing = True

    signal.signal(signal.SIGUSR1, finish)
    for ignored in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(ignored, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, BORN_BLOCKED)
    with contextlib.suppress(OSError):  # the server stopped listening for it: no matter
        os.write(sys.stdout.fileno(), READY)
    nowhere = os.open(os.devnull, os.O_WRONLY)  # the pipe is closed; stdout stays a valid descriptor
    os.dup2(nowhere, sys.stdout.fileno())
    os.close(nowhere)
    lower_priority()
    listener.settimeout(PARENT_CHECK_SECONDS)
    hashers: dict[tuple[str, str], PasswordHasher] = {}
    while not finishing and os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(READ_SECONDS)
            try:
                request = read_message(conn)
            except (OSError, ValueError):
                continue  # the worker went away, or sent what no worker sends
            if _given_up(conn):
                continue  # its login ended while it waited here (runner.py): not hashed for no one
            if isinstance(request, dict) and request.get("begun") is True:
                try:
                    conn.sendall(BEGUN)
                except OSError:
                    continue
            answer = PONG if request == PING else _answer(request, hashers)
            with contextlib.suppress(OSError):  # the worker went away meanwhile
                conn.sendall(encode(answer))


def _given_up(conn: socket.socket) -> bool:
    """Whether the worker has closed the connection after its request: nothing more is to come,
    and an answer would reach no one."""
    timeout = conn.gettimeout()
    conn.settimeout(0)  # a look, not a wait
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # still open, waiting for the answer
    except OSError:
        return True
    finally:
        conn.settimeout(timeout)


def _answer(request: dict[str, Any], hashers: dict[tuple[str, str], PasswordHasher]) -> dict[str, Any]:
    try:
        profile, key, op, args = request["profile"], request["key"], request["op"], request["args"]
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}")
        hasher = hashers.get((profile, key))
        if hasher is None:
            hasher = hashers[(profile, key)] = PasswordHasher(PROFILES[profile], bytes.fromhex(key))
        began = time.perf_counter()
        result: object
        if op == "verify":
            verdict = hasher.verify(args[0], Password(args[1]))
            result = [verdict.ok, verdict.needs_rehash]
        elif op == "hash":
            result = hasher.hash(Password(args[0]))
        else:
            result = hasher.for_import(args[0])
        return {"result": result, "seconds": time.perf_counter() - began}  # for the workers' metrics
    except DoorwardError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # never the request's content: it holds a password
        return {"error": type(exc).__name__}


def main() -> None:
    """``python -m doorward.hashing.process <fd> <parent pid>``: one, started by serve's Hashers."""
    fd, parent = int(sys.argv[1]), int(sys.argv[2])
    with socket.socket(fileno=fd) as listener:
        serve(listener, parent)


if __name__ == "__main__":
    main()
