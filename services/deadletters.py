"""Operators' view of dead letters: list them across services and replay one.

A dead letter is replayed by putting its CloudEvent back in the consuming
service's outbox (one transaction with marking it replayed). The relay then
publishes it to the topic exchange: the consumer that failed gets it again, and
consumers that already applied it skip it through their inbox. This works the
same with RabbitMQ and with the in-process bus of a running ``consistorio up``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import create_async_engine

from services.catalog import SERVICES
from services.common.bus.envelope import EnvelopeError, parse_envelope
from services.common.db import asyncpg_url
from services.common.settings import Settings

__all__ = ["DeadLetter", "DeadLetterError", "list_dead_letters", "replay_dead_letter"]


class DeadLetterError(Exception):
    """A dead letter that does not exist or cannot be replayed."""


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as operators see it."""

    ref: str
    consumer: str
    queue: str
    routing_key: str
    message_id: str | None
    tenant_id: str | None
    event_type: str | None
    reason: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def list_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every service's dead letters, oldest first."""
    engine = create_async_engine(asyncpg_url(str(settings.database_url)))
    out: list[DeadLetter] = []
    try:
        async with engine.connect() as conn:
            for name, load in SERVICES.items():
                table = load().tables.dead_letters
                rows = await conn.execute(select(table).order_by(table.c.id))
                for r in rows:
                    out.append(
                        DeadLetter(
                            ref=f"{name}:{r.id}",
                            consumer=r.consumer,
                            queue=r.queue,
                            routing_key=r.routing_key,
                            message_id=r.message_id,
                            tenant_id=r.tenant_id,
                            event_type=r.event_type,
                            reason=r.reason,
                            attempts=r.attempts,
                            created_at=r.created_at,
                            replayed_at=r.replayed_at,
                        )
                    )
    finally:
        await engine.dispose()
    return sorted(out, key=lambda d: d.created_at)


def _parse_ref(ref: str) -> tuple[str, int]:
    service, _, number = ref.partition(":")
    if service not in SERVICES or not number.isdigit():
        raise DeadLetterError(f"referencia no válida: {ref!r} (se espera <servicio>:<n>)")
    return service, int(number)


async def replay_dead_letter(settings: Settings, ref: str) -> None:
    """Puts the dead letter's event back on the bus through its service's outbox."""
    service, number = _parse_ref(ref)
    tables = SERVICES[service]().tables
    engine = create_async_engine(asyncpg_url(str(settings.database_url)))
    try:
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    select(tables.dead_letters)
                    .where(tables.dead_letters.c.id == number)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise DeadLetterError(f"no existe el mensaje muerto {ref}")
            try:
                event = parse_envelope(bytes(row.body), content_type=None)
            except EnvelopeError as exc:
                raise DeadLetterError(f"{ref} no es un CloudEvent válido: {exc}") from exc
            outbox = tables.outbox
            await conn.execute(
                pg_insert(outbox)
                .values(
                    event_id=event.id,
                    tenant_id=event.tenant,
                    routing_key=row.routing_key,
                    envelope=json.loads(bytes(row.body)),
                )
                .on_conflict_do_update(
                    index_elements=[outbox.c.event_id],
                    set_={"sent_at": None, "attempts": 0, "last_error": None},
                )
            )
            await conn.execute(
                update(tables.dead_letters)
                .where(tables.dead_letters.c.id == number)
                .values(replayed_at=datetime.now(UTC))
            )
    finally:
        await engine.dispose()
