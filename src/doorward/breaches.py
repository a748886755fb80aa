"""The breached-password range client (the core's BreachedPasswords), in httpx.

k-anonymity: only the first 5 hex characters of the password's SHA-1 are sent; the service answers
every suffix it knows under that prefix as ``SUFFIX:COUNT`` lines, padded (``Add-Padding: true``)
with lines of count 0, so the answer's size says nothing either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

_log = logging.getLogger("doorward.breaches")


class RangeClient:
    """Asks ``GET {url}/{prefix}``; fails open (None) on any error or after ``timeout`` seconds.

    ``on_failure`` is called once per failed query: the hook for a metric; ``failures`` counts them.
    """

    def __init__(self, url: str, timeout: float, on_failure: Callable[[], None] | None = None) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout, headers={"Add-Padding": "true"})
        self._on_failure = on_failure
        self.failures = 0

    async def occurrences(self, sha1_hex: str) -> int | None:
        prefix, suffix = sha1_hex[:5].upper(), sha1_hex[5:].upper()
        try:
            async with asyncio.timeout(self._timeout):  # httpx's timeout bounds each phase, this the whole
                response = await self._client.get(f"{self._url}/{prefix}")
            response.raise_for_status()
        except (httpx.HTTPError, TimeoutError) as exc:
            # The reason's class only: no password, hash or prefix in the log (an URL would carry it).
            _log.warning("breached-password check failed open: %s", type(exc).__name__)
            self.failures += 1
            if self._on_failure is not None:
                self._on_failure()
            return None
        for line in response.text.splitlines():
            found, _, count = line.strip().partition(":")
            if found.upper() == suffix:
                return int(count) if count.strip().isdigit() else 0
        return 0

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
