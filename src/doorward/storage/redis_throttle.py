"""Throttle counters in Redis: the faster shared home, when DOORWARD_REDIS_URL is set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from redis import asyncio as aioredis
from redis.asyncio.client import Pipeline

from doorward.core.errors import StorageUnavailable
from doorward.core.models import AttemptState
from doorward.core.ports import WaitUntil
from doorward.storage.errors import redis_translated

# An account's state outlives any wait: a lockout holds until a success, an unlock or a reset, and
# is forgotten only after this long without a single attempt.
STATE_TTL = timedelta(days=90)

# The wait ARGV[1], computed from the count ARGV[2]: only while the account still counts that many
# (a success may have cleared it since), and never earlier than a wait already set.
_DEFER = """
if tonumber(redis.call('HGET', KEYS[1], 'f') or '0') < tonumber(ARGV[2]) then return 0 end
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

    async def ping(self, limit: float) -> bool:
        """True when Redis answers a PING within ``limit`` seconds (for /healthz and /readyz)."""
        try:
            async with asyncio.timeout(limit), redis_translated():
                await self._redis.ping()
        except (StorageUnavailable, TimeoutError):
            return False
        return True

    async def login_state(
        self, key: str, counter: str | None, window_start: datetime
    ) -> tuple[AttemptState, int]:
        async with redis_translated(), self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._prefix + key)
            if counter is not None:
                pipe.get(self._window_key(counter, window_start))
            state, *count = await pipe.execute()
        moment = state.get(b"n", b"")
        attempt = AttemptState(
            int(state.get(b"f", 0)), datetime.fromtimestamp(float(moment), UTC) if moment else None
        )
        return attempt, int(count[0] or 0) if count else 0

    async def record_login_failure(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        wait_until: WaitUntil | None = None,
    ) -> int:
        name = self._prefix + key
        async with redis_translated():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(name, "f", 1)
                pipe.expire(name, int(STATE_TTL.total_seconds()))
                if counter is not None:
                    self._count_in(pipe, self._window_key(counter, window_start), window)
                failures, *_ = await pipe.execute()
            # The wait depends on the new count: a second round trip (no lock is held meanwhile).
            until = wait_until(int(failures)) if wait_until is not None else None
            if until is not None:
                await self._defer(keys=[name], args=[until.timestamp(), int(failures)])
        return int(failures)

    async def clear(self, key: str) -> None:
        async with redis_translated():
            await self._redis.delete(self._prefix + key)

    def _window_key(self, key: str, window_start: datetime) -> str:
        return f"{self._prefix}{key}:{int(window_start.timestamp())}"

    async def hit(self, key: str, window_start: datetime, window: timedelta) -> int:
        async with redis_translated(), self._redis.pipeline(transaction=True) as pipe:
            self._count_in(pipe, self._window_key(key, window_start), window)
            count, _ = await pipe.execute()
        return int(count)

    @staticmethod
    def _count_in(pipe: Pipeline, name: str, window: timedelta) -> None:
        pipe.incr(name)
        pipe.expire(name, int(window.total_seconds()) + 60)

    async def prune(self, windows_before: datetime, idle_before: datetime) -> int:
        return 0  # every Redis key carries its own expiry
