"""The in-process token bucket: quota, refill, independence of keys, concurrency, memory."""

from __future__ import annotations

import asyncio

from gateway.ratelimit import MemoryRateLimiter, RateDecision


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_allows_the_limit_then_refuses_with_a_retry_time() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)

    decisions = [await limiter.hit("ip:1", 3, 60) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    # One token comes back every 20 s at 3 per minute.
    assert decisions[3].reset_seconds == 20
    # Until the quota is full again: one token missing after the first hit, three after the third.
    assert decisions[0].reset_seconds == 20
    assert decisions[2].reset_seconds == 60


async def test_tokens_come_back_with_time() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(3):
        await limiter.hit("ip:1", 3, 60)

    clock.now += 19.0
    assert not (await limiter.hit("ip:1", 3, 60)).allowed
    clock.now += 1.0
    assert (await limiter.hit("ip:1", 3, 60)) == RateDecision(
        allowed=True, remaining=0, reset_seconds=60
    )
    clock.now += 600.0
    assert (await limiter.hit("ip:1", 3, 60)).remaining == 2


async def test_keys_have_independent_quotas() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())

    assert (await limiter.hit("user:03014:ana", 1, 60)).allowed
    assert not (await limiter.hit("user:03014:ana", 1, 60)).allowed
    assert (await limiter.hit("user:46250:ana", 1, 60)).allowed


async def test_concurrent_hits_never_exceed_the_limit() -> None:
    limiter = MemoryRateLimiter()

    decisions = await asyncio.gather(*(limiter.hit("ip:1", 10, 60) for _ in range(50)))

    assert sum(d.allowed for d in decisions) == 10


async def test_idle_keys_are_evicted() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(100):
        await limiter.hit(f"ip:{i}", 5, 60)
    assert len(limiter) == 100

    clock.now += 61.0
    await limiter.hit("ip:nuevo", 5, 60)

    assert len(limiter) == 1


async def test_recently_used_keys_survive_eviction_of_idle_ones() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    await limiter.hit("ip:ocioso", 2, 60)
    await limiter.hit("ip:activo", 2, 60)
    clock.now += 50.0
    await limiter.hit("ip:activo", 2, 60)

    clock.now += 11.0
    await limiter.hit("ip:otro", 2, 60)

    assert len(limiter) == 2
    # A fresh bucket would have one token left after this hit; the kept one has none.
    assert (await limiter.hit("ip:activo", 2, 60)).remaining == 0


async def test_memory_is_bounded_by_max_keys() -> None:
    limiter = MemoryRateLimiter(max_keys=10, clock=FakeClock())

    for i in range(25):
        await limiter.hit(f"ip:{i}", 1, 60)

    assert len(limiter) == 10
    # The most recent key is still tracked, the oldest was dropped for a fresh quota.
    assert not (await limiter.hit("ip:24", 1, 60)).allowed
    assert (await limiter.hit("ip:0", 1, 60)).allowed


async def test_zero_limit_refuses_everything() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())

    decision = await limiter.hit("ip:1", 0, 60)

    assert decision == RateDecision(allowed=False, remaining=0, reset_seconds=60)
