"""Throttling clients that keep asking for codes that do not exist.

Guessing a 120-bit code is hopeless, but a client that misses again and again
is trying to, and is told to stop (429) after a few misses a minute. Hits are
free: a person checking many genuine documents is never slowed down.

The window is kept in this process's memory (a sliding window of miss times per
client). The gateway keeps one for every public path that looks codes up
(``/verificar/{csv}`` and ``/verificar/{csv}/documento`` spend the same allowance);
the csv service keeps its own for callers that reach it directly. With several
replicas a client gets at most that many times the allowance; the gateway's
anonymous per-address limit, shared through Redis, is the platform-wide bound on top.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["MissLimiter"]


class MissLimiter:
    """A sliding window of misses per client: ``limit`` per ``window_seconds``."""

    def __init__(
        self,
        limit: int,
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.limit = limit
        self._window = window_seconds
        self._clock = clock
        # Oldest-touched first, so that a flood of addresses evicts the stalest.
        self._misses: OrderedDict[str, deque[float]] = OrderedDict()
        self._max_clients = max_clients

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before asking again, or None if it may ask now."""
        now = self._clock()
        misses = self._current(client, now)
        if misses is None or len(misses) < self.limit:
            return None
        return max(1, math.ceil(misses[0] + self._window - now))

    def record_miss(self, client: str) -> None:
        """Counts one miss of ``client`` now."""
        now = self._clock()
        misses = self._current(client, now)
        if misses is None:
            misses = self._misses[client] = deque()
            while len(self._misses) > self._max_clients:
                self._misses.popitem(last=False)
        self._misses.move_to_end(client)
        misses.append(now)

    def _current(self, client: str, now: float) -> deque[float] | None:
        misses = self._misses.get(client)
        if misses is None:
            return None
        while misses and misses[0] <= now - self._window:
            misses.popleft()
        if not misses:
            del self._misses[client]
            return None
        return misses
