"""Giving up the work of a request whose client has gone (a closed connection), instead of finishing it.

uvicorn runs a request to its end whether or not anyone waits for the answer. For a login queued for
a hash slot that is a hash spent on no one, and a place in the queue a client still there could have
had: after a load generator stopped, its abandoned logins kept the queue full and the next client's
logins got 503 (issue 21). Once the body is read, the next thing ASGI's ``receive`` gives is
``http.disconnect``, when the client goes; here it cancels the work. The core needs no hook for it:
the hash pool gives a cancelled waiter's slot back, and a hash not begun is never computed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, or ClientDisconnect once ``work`` is cancelled because the client has gone.

    Only once the request's body has been read: the watch reads what ``receive`` brings next.
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnect(request.receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request's own task is cancelled (the server stopping)
        watch.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # its slot is given back before the next request is admitted
    if task.cancelled():
        raise ClientDisconnect()
    return task.result()


async def _disconnect(receive: Receive) -> None:
    """Return once the client has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass  # nothing else comes after a whole body; should it, it is not this watch's to read
