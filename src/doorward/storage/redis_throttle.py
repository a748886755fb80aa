"""Throttle counters in Redis: the faster shared home, when DOORWARD_REDIS_URL is set."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from redis import asyncio as aioredis
from redis.asyncio.client import Pipeline

from doorward.core.errors import StorageUnavailable
from doorward.core.models import AttemptState, LoginLimits, Opening, Reservation
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


# A login's reservation, atomic as every script is. KEYS: the account's hash, then the client's
# window (if any). ARGV: now, lockout, client limit, free failures, the state's TTL, the window's
# TTL, then the waits after failure free, free + 1, ... (the last one for every failure after).
# Answers {admitted, failures, next allowed at, the window's count}.
_RESERVE = """
local now = tonumber(ARGV[1])
local counted = 0
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local n = redis.call('HGET', KEYS[1], 'n') or ''
if #KEYS == 2 then
  counted = tonumber(redis.call('GET', KEYS[2]) or '0')
  if counted >= tonumber(ARGV[3]) then return {0, tostring(f), n, tostring(counted)} end
end
if f >= tonumber(ARGV[2]) or (n ~= '' and tonumber(n) > now) then
  return {0, tostring(f), n, tostring(counted)}
end
f = redis.call('HINCRBY', KEYS[1], 'f', 1)
local free = tonumber(ARGV[4])
if f >= free and #ARGV > 6 then
  n = ARGV[7 + math.min(f - free, #ARGV - 7)]
  redis.call('HSET', KEYS[1], 'n', n)
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
if #KEYS == 2 then
  counted = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return {1, tostring(f), n, tostring(counted)}
"""

# Taking a reservation back. KEYS as _RESERVE's; ARGV[1] '1' to forget the account, '0' to take
# back its one failure, and its wait while the account counts ARGV[2] (no reservation since). The
# window is taken back only while it exists (a DECR would create it).
_RELEASE = """
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1])
elseif f > 0 then
  redis.call('HINCRBY', KEYS[1], 'f', -1)
  if f == tonumber(ARGV[2]) then redis.call('HDEL', KEYS[1], 'n') end
end
if #KEYS == 2 and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 1
"""


class RedisThrottleStore:
    """Counters as Redis hashes and expiring integers, under ``prefix``."""

    def __init__(self, client: aioredis.Redis, prefix: str = "doorward:") -> None:
        self._redis = client
        self._prefix = prefix
        self._defer = client.register_script(_DEFER)
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)

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

    async def reserve_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        limits: LoginLimits,
        email: str | None = None,  # the users are elsewhere: the caller reads the user
    ) -> Reservation:
        keys = [self._prefix + key]
        if counter is not None:
            keys.append(self._window_key(counter, window_start))
        args: list[str | int | float] = [
            limits.now.timestamp(),
            limits.lockout,
            limits.client,
            limits.free,
            int(STATE_TTL.total_seconds()),
            int(window.total_seconds()) + 60,
            *(wait.timestamp() for wait in limits.waits),
        ]
        async with redis_translated():
            admitted, failures, moment, counted = await self._reserve(keys=keys, args=args)
        until = datetime.fromtimestamp(float(moment), UTC) if moment else None
        return Reservation(bool(admitted), AttemptState(int(failures), until), int(counted))

    async def release_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        *,
        reset: bool,
        reserved: int,
        opening: Opening | None = None,  # the sessions are elsewhere: the caller writes it
    ) -> None:
        keys = [self._prefix + key]
        if counter is not None:
            keys.append(self._window_key(counter, window_start))
        async with redis_translated():
            await self._release(keys=keys, args=["1" if reset else "0", reserved])

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

    async def forget_windows(self, keys: Sequence[str]) -> dict[str, int]:
        forgotten: dict[str, int] = {}
        async with redis_translated():
            for key in keys:
                # One key per window (``_window_key``): every window of this counter, escaped for MATCH.
                start = f"{self._prefix}{key}:"
                pattern = re.sub(r"([*?\[\]\\])", r"\\\1", start) + "*"
                # Only the window's start after it: an IPv6 address may be another's beginning.
                names = [
                    name
                    async for name in self._redis.scan_iter(match=pattern, count=1000)
                    if name[len(start.encode()) :].isdigit()
                ]
                if not names:
                    continue
                counts = await self._redis.mget(names)
                await self._redis.delete(*names)
                forgotten[key] = sum(int(count or 0) for count in counts)
        return forgotten

    async def prune(self, windows_before: datetime, idle_before: datetime) -> int:
        return 0  # every Redis key carries its own expiry
