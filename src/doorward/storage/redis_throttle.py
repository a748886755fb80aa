"""Throttle counters in Redis: the faster shared home, when DOORWARD_REDIS_URL is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from doorward.core.errors import StorageUnavailable
from doorward.core.throttle import AttemptState

# An account's state outlives any wait: a lockout holds until a success, an unlock or a reset, and
# is forgotten only after this long without a single attempt.
STATE_TTL = timedelta(days=90)

_DEFER = """
local current = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], 'n', ARGV[1]) end
return 1
"""


class RedisThrottleStore:
    """Counters as Redis hashes and expiring integers, under ``prefix``."""

    def __init__(self, client: aioredis.Redis, prefix: str = "doorward:") -> None:
        self._redis = client
        self._prefix = prefix
        self._defer = client.register_script(_DEFER)

    @classmethod
    def from_url(cls, url: str, *, timeout: float, prefix: str = "doorward:") -> RedisThrottleStore:
        client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix)

    async def close(self) -> None:
        await self._redis.aclose()

    @asynccontextmanager
    async def _available(self) -> AsyncIterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StorageUnavailable() from exc

    async def load(self, key: str) -> AttemptState:
        async with self._available():
            state = await self._redis.hgetall(self._prefix + key)
        if not state:
            return AttemptState()
        moment = state.get(b"n", b"")
        return AttemptState(
            int(state.get(b"f", 0)), datetime.fromtimestamp(float(moment), UTC) if moment else None
        )

    async def record_failure(self, key: str) -> int:
        name = self._prefix + key
        async with self._available(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(name, "f", 1)
            pipe.expire(name, int(STATE_TTL.total_seconds()))
            failures, _ = await pipe.execute()
        return int(failures)

    async def defer(self, key: str, until: datetime) -> None:
        async with self._available():
            await self._defer(keys=[self._prefix + key], args=[until.timestamp()])

    async def clear(self, key: str) -> None:
        async with self._available():
            await self._redis.delete(self._prefix + key)

    def _window_key(self, key: str, window_start: datetime) -> str:
        return f"{self._prefix}{key}:{int(window_start.timestamp())}"

    async def hit(self, key: str, window_start: datetime, window: timedelta) -> int:
        name = self._window_key(key, window_start)
        async with self._available(), self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, int(window.total_seconds()) + 60)
            count, _ = await pipe.execute()
        return int(count)

    async def count(self, key: str, window_start: datetime) -> int:
        async with self._available():
            value = await self._redis.get(self._window_key(key, window_start))
        return int(value or 0)

    async def prune(self, windows_before: datetime, idle_before: datetime) -> int:
        return 0  # every Redis key carries its own expiry
