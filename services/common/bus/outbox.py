"""The outbox relay: publishes committed events and marks them sent.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several replicas can relay
the same outbox without publishing a row twice at the same time. A row is marked
sent only once the transport says the message can no longer be lost
(:meth:`Transport.publish_safely`: the broker's confirm, or, on the in-process bus,
every consumer's settlement); if the transport fails the rows stay and are retried
with back-off, and rows left unsent by a process that died are published by the
next one. At-least-once: consumers deduplicate by id. A batch is published
concurrently, so that waiting on in-process consumers costs one handler's time per
batch, not one per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

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

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stops the loop after the current batch, or abandons the batch after ``grace`` s.

        An abandoned batch's transaction rolls back: its rows stay unsent and the
        next start publishes them again.
        """
        self._stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            return
        _, pending = await asyncio.wait({task}, timeout=grace)
        if pending:
            _log.warning("outbox relay of %s abandoned its batch on stop", self._tables.schema)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

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
                outcomes = await asyncio.gather(
                    *(self._publish(row.routing_key, row.envelope) for row in rows),
                    return_exceptions=True,
                )
                done = [
                    row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None
                ]
                failure: BaseException | None = None
                for row, outcome in zip(rows, outcomes, strict=True):
                    if outcome is None:
                        continue
                    failure = failure or outcome
                    await session.execute(
                        update(outbox)
                        .where(outbox.c.id == row.id)
                        .values(attempts=outbox.c.attempts + 1, last_error=str(outcome)[:2000])
                    )
                if done:
                    await session.execute(
                        update(outbox)
                        .where(outbox.c.id.in_(done))
                        .values(sent_at=datetime.now(UTC), last_error=None)
                    )
                    sent += len(done)
            if failure is not None:
                raise failure

    async def _publish(self, routing_key: str, envelope: dict[str, Any]) -> None:
        with publish_span(
            f"publish {routing_key}",
            envelope.get("traceparent"),
            {"messaging.destination.name": routing_key},
        ):
            await self._transport.publish_safely(
                OutgoingMessage(
                    routing_key=routing_key,
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
