"""What overload looks like from outside: refusal counters, in-flight gauges, pool waits,
and one log line per burst of refusals.

A process that sheds load answers many requests with 503 in a short time. Logging each
refusal would turn an overload into a logging storm on top of it, so refusals are
counted in a Prometheus counter (``consistorio_http_refused_total{service, reason}``)
and :class:`RefusalLog` writes one line when a burst starts and one summary line when it
has lasted ``every_seconds``. No FastAPI here: the admission middleware, the problem
handlers, the gateway and the database pool all report through this module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CONSUMER_IN_FLIGHT",
    "IN_FLIGHT",
    "POOL_WAIT",
    "REFUSED",
    "RefusalLog",
    "refusals",
]

REFUSED = Counter(
    "consistorio_http_refused_total",
    "Requests refused with 503 before doing their work, by service and reason "
    "(service_busy, tenant_busy, shutting_down, pool_exhausted, upstream_unavailable).",
    ["service", "reason"],
)
IN_FLIGHT = Gauge(
    "consistorio_http_in_flight",
    "Requests being served now (admitted and not yet answered), by service.",
    ["service"],
)
CONSUMER_IN_FLIGHT = Gauge(
    "consistorio_consumer_in_flight",
    "Bus messages being handled now, by queue.",
    ["queue"],
)
POOL_WAIT = Histogram(
    "consistorio_db_pool_wait_seconds",
    "Time a caller waited for a database connection, by pool (requests, workers).",
    ["pool"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_log = logging.getLogger("consistorio.overload")


class RefusalLog:
    """Counts refusals and logs them once per burst, not once per request.

    The first refusal after a quiet spell is logged at once (an operator sees the
    start of the overload); the refusals that follow within ``every_seconds`` are
    summed into one line written when that time is up. The next refusal after the
    summary starts a new burst.
    """

    def __init__(
        self,
        *,
        every_seconds: float = 10.0,
        logger: logging.Logger = _log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_seconds = every_seconds
        self._logger = logger
        self._clock = clock
        self._burst_started: float | None = None
        self._pending: Tally[tuple[str, str]] = Tally()
        self._flush: asyncio.TimerHandle | None = None

    def record(self, service: str, reason: str) -> None:
        """Counts one refusal of ``service`` for ``reason``."""
        REFUSED.labels(service, reason).inc()
        now = self._clock()
        if self._burst_started is None:
            self._burst_started = now
            self._logger.warning(
                "overload: refusing requests with 503 (%s, %s); further refusals are "
                "summed for %g s",
                service,
                reason,
                self.every_seconds,
                extra={"service": service, "reason": reason},
            )
            self._schedule()
            return
        self._pending[(service, reason)] += 1
        if now - self._burst_started >= self.every_seconds:
            self.flush()

    def flush(self) -> None:
        """Writes the summary of the burst so far (if any) and ends the burst."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        started, self._burst_started = self._burst_started, None
        pending, self._pending = self._pending, Tally()
        if started is None or not pending:
            return
        total = sum(pending.values())
        detail = ", ".join(f"{s}/{r}: {n}" for (s, r), n in sorted(pending.items()))
        self._logger.warning(
            "overload: %d more requests refused with 503 in %.1f s (%s)",
            total,
            self._clock() - started,
            detail,
            extra={"refused": total},
        )

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush = loop.call_later(self.every_seconds, self.flush)


# One per process: several apps of `consistorio up` share one log and one burst.
refusals = RefusalLog()
