"""Request rate limiting for the gateway: one interface, a memory and a Redis backend.

Both backends implement the same token bucket (capacity ``limit``, refilled at
``limit / window_seconds`` tokens per second), so a deployment behaves the same
whether it runs one gateway replica with memory or several sharing Redis.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["MemoryRateLimiter", "RateDecision", "RateLimiter", "RedisRateLimiter"]

_log = logging.getLogger("consistorio.gateway.ratelimit")


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one hit: whether it may pass, what is left, and when to retry or refill.

    ``reset_seconds`` is the wait until a request would be accepted again when
    ``allowed`` is false (the ``Retry-After`` value), and the time until the
    whole quota is available again when it is true.
    """

    allowed: bool
    remaining: int
    reset_seconds: int


class RateLimiter(ABC):
    """What the gateway needs from a rate limiter, whatever stores the counters."""

    @abstractmethod
    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Spends one request of ``key``'s quota of ``limit`` per ``window_seconds``."""

    async def aclose(self) -> None:
        """Releases connections; backends without any keep this no-op."""
        return None


def _decision(tokens: float, allowed: bool, limit: int, rate: float) -> RateDecision:
    if allowed:
        reset = math.ceil((limit - tokens) / rate) if tokens < limit else 0
    else:
        # Retry-After must make the client wait at least a second to be useful.
        reset = max(1, math.ceil((1.0 - tokens) / rate))
    return RateDecision(allowed=allowed, remaining=max(0, math.floor(tokens)), reset_seconds=reset)


@dataclass
class _Bucket:
    tokens: float
    updated: float
    window: float


class MemoryRateLimiter(RateLimiter):
    """Token buckets in this process: for a single replica or as Redis's fallback.

    Memory stays bounded: a bucket left alone for a whole window is full again,
    which is the same as having no entry, so idle keys are dropped; beyond
    ``max_keys`` the least recently used key is dropped even if not idle (that
    client merely gets a fresh quota).
    """

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock

    def __len__(self) -> int:
        return len(self._buckets)

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Spends one token of ``key``'s bucket if there is one."""
        # No await between reading and writing the bucket: the event loop cannot
        # interleave two hits, so no lock is needed to stay exact under concurrency.
        if limit <= 0:
            return RateDecision(allowed=False, remaining=0, reset_seconds=window_seconds)
        now = self._clock()
        rate = limit / window_seconds
        self._evict_idle(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(limit), updated=now, window=float(window_seconds))
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(limit), bucket.tokens + elapsed * rate)
            bucket.updated = now
            bucket.window = float(window_seconds)
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        return _decision(bucket.tokens, allowed, limit, rate)

    def _evict_idle(self, now: float) -> None:
        # Buckets are kept in least-recently-used order, so idle ones are at the front;
        # stopping at the first busy one keeps each hit O(1) amortised.
        while self._buckets:
            bucket = next(iter(self._buckets.values()))
            if now - bucket.updated < bucket.window:
                return
            self._buckets.popitem(last=False)


# Server time (TIME) keeps replicas with skewed clocks consistent; with effect
# replication (the default since Redis 5) a write after TIME is allowed.
_TOKEN_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
local rate = capacity / window_ms
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(capacity, tokens + elapsed * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], window_ms)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter(RateLimiter):
    """Token buckets in Redis, shared by every gateway replica.

    One Lua script reads, refills, spends and writes the bucket atomically. A
    bucket expires after a window of inactivity (it would be full anyway), so
    Redis holds only active clients. If Redis fails, hits go to an in-process
    fallback: limits then apply per replica instead of not at all.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "consistorio:ratelimit:",
        fallback: RateLimiter | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_TOKEN_BUCKET_LUA)
        self._fallback = fallback or MemoryRateLimiter()
        self._redis_failing = False

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "consistorio:ratelimit:") -> RedisRateLimiter:
        """Builds a limiter with its own connection pool (no connection is opened yet)."""
        redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return cls(redis, prefix=prefix)

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Spends one token of ``key``'s shared bucket."""
        if limit <= 0:
            return RateDecision(allowed=False, remaining=0, reset_seconds=window_seconds)
        try:
            allowed, tokens = await self._script(
                keys=[self._prefix + key], args=[limit, window_seconds * 1000]
            )
        except RedisError as exc:
            if not self._redis_failing:
                _log.warning("Redis unavailable for rate limiting, using memory: %s", exc)
                self._redis_failing = True
            return await self._fallback.hit(key, limit, window_seconds)
        if self._redis_failing:
            _log.info("Redis available again for rate limiting")
            self._redis_failing = False
        return _decision(float(tokens), bool(int(allowed)), limit, limit / window_seconds)

    async def aclose(self) -> None:
        """Closes the Redis connection pool."""
        await self._redis.aclose()
