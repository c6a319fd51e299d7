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

Every event of the platform passes here, so the per-event cost is kept low (issue #12):
the batch runs as three plain statements on the pooled connection's driver
(:mod:`services.common.bus.outbox_sql`), the body published is the envelope's JSON text
as PostgreSQL keeps it (no decoding and encoding again), and a batch that comes back
short ends the drain instead of a second, empty claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy.util import greenlet_spawn

from services.common.bus.outbox_sql import OutboxStatements
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
        self._sql = OutboxStatements.for_table(tables.outbox)
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
            # Cleared before draining: a commit's wake-up during the drain runs another.
            self._wakeup.clear()
            try:
                await self.drain()
                backoff = self._poll
            except TransportUnavailable as exc:
                _log.warning("broker unavailable, outbox kept: %s", exc)
                backoff = min(max(backoff * 2, 0.5), self._max_backoff)
            except Exception:
                _log.exception("outbox relay error")
                backoff = min(max(backoff * 2, 0.5), self._max_backoff)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wakeup.wait()

    async def drain(self) -> int:
        """Publishes the pending rows; returns how many were sent. Raises if the broker fails.

        Batches are claimed until one comes back short: rows committed later are the
        next wake's (:meth:`_run` clears its wake-up before draining, so none is missed).
        """
        sent = 0
        while True:
            claimed, done, failure = await self._relay_batch()
            sent += done
            if failure is not None:
                raise failure
            if claimed < self._batch:
                return sent

    async def _relay_batch(self) -> tuple[int, int, BaseException | None]:
        """One batch in one transaction: (rows claimed, rows sent, first publish failure).

        The transaction runs on the pooled connection's driver, below SQLAlchemy (see
        :mod:`services.common.bus.outbox_sql`). A publish failure is returned, not
        raised, so that the rows' attempts commit and the connection goes back clean.
        """
        # The pool's connection itself, not an AsyncConnection around it: checking one
        # out and in that way costs a third of what a one-row batch costs.
        pooled = await self._db.engine.raw_connection()
        driver: asyncpg.Connection = pooled.driver_connection
        try:
            await driver.execute("BEGIN")
            rows = await driver.fetch(self._sql.claim, self._batch)
            if not rows:
                await driver.execute("COMMIT")
                await greenlet_spawn(pooled.close)
                return 0, 0, None
            outcomes = await self._publish_all(rows)
            done: list[int] = []
            failed: list[int] = []
            errors: list[str] = []
            failure: BaseException | None = None
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome is None:
                    done.append(row[0])
                    continue
                failure = failure or outcome
                failed.append(row[0])
                errors.append(str(outcome)[:2000])
            if failed:
                await driver.execute(self._sql.mark_failed, failed, errors)
            await driver.execute(self._sql.commit_sent(done))
        except BaseException:
            # Cancelled mid-statement (an abandoned batch) or broken: the connection is
            # inside a transaction, maybe inside a statement, so it is closed, not pooled
            # (closing it rolls the transaction back on the server).
            with contextlib.suppress(Exception):
                await greenlet_spawn(pooled.invalidate)
            raise
        # Checked in under a greenlet: the pool may close it (past its size, or disposed).
        await greenlet_spawn(pooled.close)
        return len(rows), len(done), failure

    async def _publish_all(self, rows: list[asyncpg.Record]) -> list[BaseException | None]:
        """Publishes a batch concurrently; each row's outcome is None or its exception."""
        if len(rows) > 1:
            return await asyncio.gather(*map(self._publish, rows), return_exceptions=True)
        # One row, the usual case on a quiet platform: no task to wrap it in.
        try:
            await self._publish(rows[0])
        except Exception as exc:
            return [exc]
        return [None]

    async def _publish(self, row: asyncpg.Record) -> None:
        _, routing_key, event_id, tenant, ce_type, traceparent, body = row
        if event_id is None or tenant is None or ce_type is None:
            raise ValueError("the envelope lacks its id, tenantid or type")
        headers = {"tenantid": tenant, "ce-type": ce_type}
        if traceparent:
            headers["traceparent"] = traceparent
        with publish_span(
            f"publish {routing_key}", traceparent, {"messaging.destination.name": routing_key}
        ):
            # The stored JSON text is the message body: the same bytes json.dumps made
            # of the decoded envelope, without decoding and encoding it again.
            await self._transport.publish_safely(
                OutgoingMessage(
                    routing_key=routing_key,
                    body=body.encode(),
                    message_id=event_id,
                    headers=headers,
                )
            )
