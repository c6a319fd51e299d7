"""Prometheus metrics: request latency by route, and the bus backlog read from the tables.

Operators alert on what the bus hides: an outbox that stops draining, dead letters
piling up for one consumer, consumers falling behind. Latency and consumer lag are
observed in the process; the outbox and dead-letter figures are read from the
service's own kernel tables at scrape time, so they are right after a restart and
the same whichever replica is scraped. A service adds its own figures (the
registro's justificante backlog) as :class:`GaugeQuery` objects.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.bus.envelope import ReceivedEvent
from services.common.db import Database
from services.common.kernel_tables import KernelTables

__all__ = [
    "CONSUMER_LAG",
    "REQUEST_LATENCY",
    "GaugeQuery",
    "install_metrics",
    "observe_consumer_lag",
]

REQUEST_LATENCY = Histogram(
    "consistorio_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_LAG = Histogram(
    "consistorio_consumer_lag_seconds",
    "Time from an event's creation to its consumer handling it.",
    ["service", "consumer"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)


@dataclass(frozen=True)
class GaugeQuery:
    """A gauge a service computes at scrape time (``read`` returns label values -> value)."""

    name: str
    documentation: str
    labels: Sequence[str]
    read: Callable[[], Awaitable[dict[tuple[str, ...], float]]]


def observe_consumer_lag(service: str, consumer: str, event: ReceivedEvent) -> None:
    """Records how late ``event`` reached its consumer (from its CloudEvents ``time``)."""
    stamp = event.envelope.get("time")
    if not isinstance(stamp, str):
        return
    try:
        created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return
    lag = (datetime.now(UTC) - created).total_seconds()
    CONSUMER_LAG.labels(service, consumer).observe(max(lag, 0.0))


async def _kernel_gauges(
    service: str, db: Database, tables: KernelTables
) -> list[GaugeMetricFamily]:
    """Outbox backlog and age, and dead letters waiting per consumer, from the tables."""
    outbox, dead = tables.outbox, tables.dead_letters
    async with db.engine.connect() as conn:
        pending, oldest = (
            await conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.sent_at.is_(None)
                )
            )
        ).one()
        letters = (
            await conn.execute(
                select(dead.c.consumer, func.count())
                .where(dead.c.replayed_at.is_(None))
                .group_by(dead.c.consumer)
            )
        ).all()
    backlog = GaugeMetricFamily(
        "consistorio_outbox_pending", "Outbox events not yet published.", labels=["service"]
    )
    backlog.add_metric([service], pending)
    age = GaugeMetricFamily(
        "consistorio_outbox_oldest_pending_age_seconds",
        "Age of the oldest unpublished outbox event (0 when none).",
        labels=["service"],
    )
    age.add_metric(
        [service], (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
    )
    dead_letters = GaugeMetricFamily(
        "consistorio_dead_letters",
        "Dead letters not yet replayed, by consumer.",
        labels=["service", "consumer"],
    )
    for consumer, count in letters:
        dead_letters.add_metric([service, consumer], count)
    return [backlog, age, dead_letters]


class _Snapshot:
    """A collector holding metric families computed before the (synchronous) scrape."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


class _LatencyMiddleware:
    """Observes every request's latency by route template and status.

    Pure ASGI: Starlette's ``@app.middleware("http")`` runs each request through a task
    group and memory streams, which cost more CPU than many a request's own work. The
    time runs until the answer is sent whole.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            if template != "/metrics":
                REQUEST_LATENCY.labels(
                    self.service, scope["method"], template, str(status)
                ).observe(time.perf_counter() - started)


def install_metrics(
    app: FastAPI,
    *,
    service: str,
    db: Database | None = None,
    tables: KernelTables | None = None,
    gauges: Sequence[GaugeQuery] = (),
) -> None:
    """Adds the latency middleware and ``GET /metrics`` (Prometheus text format) to ``app``."""
    app.add_middleware(_LatencyMiddleware, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        families: list[GaugeMetricFamily] = []
        if db is not None and tables is not None:
            families.extend(await _kernel_gauges(service, db, tables))
        for gauge in gauges:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=list(gauge.labels))
            for labels, value in (await gauge.read()).items():
                family.add_metric(list(labels), value)
            families.append(family)
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Snapshot(families))
        body = generate_latest(REGISTRY) + generate_latest(scrape)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
