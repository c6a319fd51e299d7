"""Event consumers: validate, apply once, retry with back-off, dead-letter with the reason.

The handler runs inside a unit of work together with an inbox insert keyed by
(consumer, event id): a redelivered event that already took effect is acked and
skipped, and one whose transaction failed leaves no trace and is tried again.
An envelope or payload that breaks its contract is dead-lettered at once (it
will never succeed); a handler that keeps failing is dead-lettered after the
last attempt. Dead letters are rows in the service's ``dead_letters`` table,
committed before the message is acked, so nothing is lost; operators list and
replay them with ``consistorio dlq``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.dml import ReturningInsert

from services.common.bus.envelope import (
    EnvelopeError,
    EventName,
    ReceivedEvent,
    parse_envelope,
    split_routing_key,
)
from services.common.bus.transport import Delivery, Transport
from services.common.contracts import ContractRegistry, ContractViolation, UnknownContract
from services.common.db import Database
from services.common.kernel_tables import KernelTables
from services.common.telemetry import consume_span
from services.common.uow import Actor, UnitOfWork

__all__ = ["EventConsumer", "EventFilter", "EventHandler", "PermanentFailure", "replies_to"]

_log = logging.getLogger("consistorio.consumer")
_DIALECT = asyncpg_dialect()

EventHandler = Callable[[UnitOfWork, ReceivedEvent], Awaitable[None]]
# A test on the event alone (no database): False means it is none of the consumer's business.
EventFilter = Callable[[ReceivedEvent], bool]


@functools.lru_cache(maxsize=8)
def _claim(inbox: Table) -> ReturningInsert[Any]:
    """The inbox claim of a delivery, built once with parameters: built per delivery,
    its ``values()`` and cache key cost more CPU than the insert itself."""
    return (
        pg_insert(inbox)
        .values(
            {
                name: bindparam(name, type_=inbox.c[name].type)
                for name in ("consumer", "event_id", "tenant_id", "event_type")
            }
        )
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )


# Values written into the claim's SQL as they are: nothing a literal would need escaped.
_PLAIN = re.compile(r"[A-Za-z0-9._:-]{1,255}")
# The command status of a claim that inserted its row (ON CONFLICT DO NOTHING inserts none).
_CLAIMED = "INSERT 0 1"


@functools.lru_cache(maxsize=8)
def _claim_prefix(inbox: Table) -> str:
    table = _DIALECT.identifier_preparer.format_table(inbox)
    return f"INSERT INTO {table} (consumer, event_id, tenant_id, event_type) VALUES "


def _claim_sql(inbox: Table, consumer: str, event: ReceivedEvent) -> str:
    """The claim as constant SQL, to travel with the transaction's ``BEGIN`` and tenant in
    one round trip; empty when a value is not plainly safe to write (then it is bound)."""
    values = (consumer, event.id, event.tenant, str(event.name))
    if not all(isinstance(v, str) and _PLAIN.fullmatch(v) for v in values):
        return ""
    literals = ", ".join(f"'{v}'" for v in values)
    return f"{_claim_prefix(inbox)}({literals}) ON CONFLICT DO NOTHING"


class PermanentFailure(Exception):
    """Raised by a handler for an event that can never succeed: dead-letter, no retry."""


@dataclass
class EventConsumer:
    """Binds a handler to a durable queue for one or more event names."""

    name: str
    queue: str
    events: list[str]
    handler: EventHandler
    db: Database
    tables: KernelTables
    contracts: ContractRegistry
    max_attempts: int = 5
    retry_base_seconds: float = 0.2
    after_commit: Callable[[], None] | None = None
    # Unsettled deliveries at once; None is the transport's default.
    prefetch: int | None = None
    # Events it refuses are acknowledged untouched, before any transaction: no inbox row,
    # no handler (e.g. :func:`replies_to`).
    wants: EventFilter | None = None

    async def start(self, transport: Transport) -> None:
        """Subscribes the queue to every tenant's copy of the events."""
        bindings = [EventName.parse(e).binding() for e in self.events]
        await transport.subscribe(self.queue, bindings, self.on_delivery, prefetch=self.prefetch)

    async def on_delivery(self, delivery: Delivery) -> None:
        """Processes one delivery to the end: applied, skipped, or dead-lettered."""
        try:
            event = self._accept(delivery)
        except (EnvelopeError, ContractViolation, UnknownContract) as exc:
            await self._dead_letter_then_ack(delivery, f"contrato: {exc}", attempts=1)
            return
        if self.wants is not None and not self.wants(event):
            _log.debug("%s: event %s is not for this consumer; skipped", self.name, event.id)
            await delivery.ack()
            return
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                with consume_span(
                    f"{self.name} {event.name}",
                    event.traceparent,
                    {"messaging.message.id": event.id, "consistorio.tenant": event.tenant},
                ):
                    await self._apply(event)
                await delivery.ack()
                return
            except PermanentFailure as exc:
                await self._dead_letter_then_ack(delivery, f"rechazado: {exc}", attempts=attempt)
                return
            except Exception as exc:
                last_error = exc
                _log.warning(
                    "handler %s failed (attempt %d/%d) for event %s: %r",
                    self.name,
                    attempt,
                    self.max_attempts,
                    event.id,
                    exc,
                )
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_base_seconds * 2 ** (attempt - 1))
        await self._dead_letter_then_ack(
            delivery, f"error tras {self.max_attempts} intentos: {last_error!r}", self.max_attempts
        )

    def _accept(self, delivery: Delivery) -> ReceivedEvent:
        event = parse_envelope(delivery.body, content_type=delivery.content_type)
        routed_tenant, _ = split_routing_key(delivery.routing_key)
        if routed_tenant != event.tenant:
            # Broker permissions confine a publisher by routing key only: an envelope
            # claiming another tenant must not act for that tenant.
            raise EnvelopeError(
                f"tenantid {event.tenant} no coincide con la clave de enrutado "
                f"{delivery.routing_key}"
            )
        name = str(event.name)
        if name not in self.events:
            raise EnvelopeError(f"el consumidor {self.name} no espera eventos {name}")
        # The envelope's check covers its data against the contract whenever the data
        # is an object; anything else still gets the contract's own verdict.
        self.contracts.validate_envelope(event.envelope)
        if not isinstance(event.data, Mapping):
            self.contracts.validate(name, event.data)
        return event

    async def _apply(self, event: ReceivedEvent) -> None:
        uow = UnitOfWork(
            db=self.db,
            tables=self.tables,
            contracts=self.contracts,
            tenant_id=event.tenant,
            actor=Actor.system(self.name),
            first=_claim_sql(self.tables.inbox, self.name, event),
            after_commit=self.after_commit,
        )
        async with uow:
            if uow.first:
                claimed = uow.first_status == _CLAIMED
            else:
                result = await uow.session.execute(
                    _claim(self.tables.inbox),
                    {
                        "consumer": self.name,
                        "event_id": event.id,
                        "tenant_id": event.tenant,
                        "event_type": str(event.name),
                    },
                )
                claimed = result.first() is not None
            if not claimed:
                _log.info("event %s already applied by %s; skipped", event.id, self.name)
                return
            await self.handler(uow, event)

    async def _dead_letter_then_ack(self, delivery: Delivery, reason: str, attempts: int) -> None:
        tenant = None
        event_type = None
        try:
            env = parse_envelope(delivery.body, content_type=None)
            tenant, event_type = env.tenant, str(env.name)
        except EnvelopeError:
            pass
        try:
            async with self.db.sessions() as session, session.begin():
                await session.execute(
                    insert(self.tables.dead_letters).values(
                        consumer=self.name,
                        queue=delivery.queue,
                        routing_key=delivery.routing_key,
                        message_id=delivery.message_id,
                        tenant_id=tenant,
                        event_type=event_type,
                        body=delivery.body,
                        headers=dict(delivery.headers),
                        reason=reason[:4000],
                        attempts=attempts,
                    )
                )
        except Exception:
            # Without a dead-letter row the message must stay on the queue.
            _log.exception("could not store dead letter; message requeued")
            await asyncio.sleep(self.retry_base_seconds)
            await delivery.reject(requeue=True)
            return
        _log.error("dead-lettered message %s on %s: %s", delivery.message_id, self.queue, reason)
        await delivery.ack()


def replies_to(solicitante: str) -> EventFilter:
    """The filter of a consumer of replies: the replies for ``solicitante``.

    The repositorio's and the sellado's replies go to every service that listens, and
    each service answers only its own: a reply naming another solicitante is no business
    of this consumer, and costs it no transaction. A reply naming none is kept, for the
    handler to decide (older messages, and services that leave the field out).
    """

    def wants(event: ReceivedEvent) -> bool:
        if not isinstance(event.data, Mapping):
            return True
        named = event.data.get("solicitante")
        return named is None or named == solicitante

    return wants
