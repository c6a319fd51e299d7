"""The outbox relay: publishes committed events and marks them sent.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several replicas can relay
the same outbox without publishing a row twice at the same time. A row is marked
sent only after the broker confirmed it; if the broker is unreachable the rows
stay and are retried with back-off. At-least-once: consumers deduplicate by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime

from sqlalchemy import select, update

from services.common.bus.transport import OutgoingMessage, Transport, TransportUnavailable
from services.common.db import Database
from services.common.kernel_tables import KernelTables
from services.common.telemetry import publish_span

__all__ = ["OutboxRelay"]

_log = logging.getLogger("consistorio.outbox")


class OutboxRelay:
    """Drains one service's outbox to the transport; woken after commits, polls otherwise."""

    def __init__(
        self,
        *,
        db: Database,
        tables: KernelTables,
        transport: Transport,
        poll_seconds: float = 1.0,
        batch_size: int = 100,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self._db = db
        self._tables = tables
        self._transport = transport
        self._poll = poll_seconds
        self._batch = batch_size
        self._max_backoff = max_backoff_seconds
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Asks the relay to drain now (called right after a commit that wrote events)."""
        self._wakeup.set()

    def start(self) -> None:
        """Starts the background loop."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"outbox-{self._tables.schema}")

    async def stop(self) -> None:
        """Stops the loop after the current batch."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = self._poll
        while not self._stopping:
            try:
                await self.drain()
                backoff = self._poll
            except TransportUnavailable as exc:
                _log.warning("broker unavailable, outbox kept: %s", exc)
                backoff = min(max(backoff * 2, 0.5), self._max_backoff)
            except Exception:
                _log.exception("outbox relay error")
                backoff = min(max(backoff * 2, 0.5), self._max_backoff)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=backoff)

    async def drain(self) -> int:
        """Publishes every pending row; returns how many were sent. Raises if the broker fails."""
        sent = 0
        outbox = self._tables.outbox
        while True:
            async with self._db.sessions() as session, session.begin():
                rows = (
                    await session.execute(
                        select(outbox.c.id, outbox.c.routing_key, outbox.c.envelope)
                        .where(outbox.c.sent_at.is_(None))
                        .order_by(outbox.c.id)
                        .limit(self._batch)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                if not rows:
                    return sent
                done: list[int] = []
                failure: TransportUnavailable | None = None
                for row in rows:
                    envelope = row.envelope
                    try:
                        with publish_span(
                            f"publish {row.routing_key}",
                            envelope.get("traceparent"),
                            {"messaging.destination.name": row.routing_key},
                        ):
                            await self._transport.publish(
                                OutgoingMessage(
                                    routing_key=row.routing_key,
                                    body=json.dumps(envelope, ensure_ascii=False).encode(),
                                    message_id=envelope["id"],
                                    headers={
                                        "tenantid": envelope["tenantid"],
                                        "ce-type": envelope["type"],
                                        **(
                                            {"traceparent": envelope["traceparent"]}
                                            if envelope.get("traceparent")
                                            else {}
                                        ),
                                    },
                                )
                            )
                    except TransportUnavailable as exc:
                        failure = exc
                        await session.execute(
                            update(outbox)
                            .where(outbox.c.id == row.id)
                            .values(attempts=outbox.c.attempts + 1, last_error=str(exc)[:2000])
                        )
                        break
                    done.append(row.id)
                if done:
                    await session.execute(
                        update(outbox)
                        .where(outbox.c.id.in_(done))
                        .values(sent_at=datetime.now(UTC), last_error=None)
                    )
                    sent += len(done)
            if failure is not None:
                raise failure
