"""The outbox relay on its own, on the real PostgreSQL: what it publishes and when a row
counts as sent.

The relay publishes the JSON text PostgreSQL keeps for an envelope rather than the
envelope decoded and encoded again, so these tests hold it to the body the decoded
envelope would have made (same bytes, same event for a consumer), and to the rules a
relay must keep: a row is marked sent only once the transport confirmed it, a failure
is recorded on its own row, rows another relay holds are skipped, an abandoned batch
leaves its rows for the next start.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import MetaData, insert, select, text

from services.common.bus.envelope import EventName, build_envelope, parse_envelope
from services.common.bus.outbox import OutboxRelay
from services.common.bus.transport import (
    Handler,
    OutgoingMessage,
    Transport,
    TransportUnavailable,
)
from services.common.db import Database
from services.common.kernel_tables import KernelTables, kernel_tables
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

TENANT = "03014"
EVENT = EventName.parse("registro.asiento.registrado.v1")


class Recording(Transport):
    """A transport that keeps what it is given; ``gate`` holds publishes, ``refuse`` fails some."""

    def __init__(self, refuse: Callable[[OutgoingMessage], bool] = lambda _: False) -> None:
        self.published: list[OutgoingMessage] = []
        self.refuse = refuse
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def start(self) -> None:
        return None

    async def close(self, *, grace: float = 5.0) -> None:
        return None

    async def publish(self, message: OutgoingMessage) -> None:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        if self.refuse(message):
            raise TransportUnavailable(f"refused {message.message_id}")
        self.published.append(message)

    async def subscribe(
        self, queue: str, bindings: list[str], handler: Handler, *, prefetch: int | None = None
    ) -> None:
        raise AssertionError("the relay publishes; it never subscribes")

    async def ping(self) -> bool:
        return True


@pytest.fixture
async def outbox(database_url: str) -> AsyncIterator[tuple[Database, KernelTables]]:
    """An empty outbox in a schema of this test alone, and a pool on its database."""
    schema = f"relay_{uuid.uuid4().hex[:8]}"
    tables = kernel_tables(MetaData(schema=schema))
    db = Database(database_url, pool_size=2)
    async with db.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(lambda sync: tables.outbox.create(sync))
    try:
        yield db, tables
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await db.dispose()


def envelope(data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return build_envelope(
        EVENT,
        tenant=TENANT,
        data=data,
        dataschema="https://consistorio.es/bus-contracts/registro/asiento-registrado/v1.json",
        **extra,
    )


async def write(db: Database, tables: KernelTables, *envelopes: dict[str, Any]) -> None:
    """Commits envelopes to the outbox the way the unit of work does (a JSONB parameter)."""
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(tables.outbox),
            [
                {
                    "event_id": e["id"],
                    "tenant_id": TENANT,
                    "routing_key": EVENT.routing_key(TENANT),
                    "envelope": e,
                }
                for e in envelopes
            ],
        )


async def rows(db: Database, tables: KernelTables) -> dict[str, Any]:
    """Every outbox row by event id: (sent, attempts, last_error, envelope as decoded)."""
    outbox = tables.outbox
    async with db.engine.connect() as conn:
        result = await conn.execute(
            select(
                outbox.c.event_id,
                outbox.c.sent_at.is_not(None).label("sent"),
                outbox.c.attempts,
                outbox.c.last_error,
                outbox.c.envelope,
            )
        )
        return {row.event_id: row for row in result}


def relay(db: Database, tables: KernelTables, transport: Transport, **kw: Any) -> OutboxRelay:
    return OutboxRelay(db=db, tables=tables, transport=transport, poll_seconds=0.05, **kw)


TRICKY_DATA: list[dict[str, Any]] = [
    {"resumen": "Solicitud de licencia — 2.º piso, Begoña Núñez"},
    {"resumen": 'comillas " y barra \\ y / y \t tab y \n salto y \u0001 control'},
    {"resumen": "emoji 🏛️ y 中文 y Ελληνικά", "anexos": []},
    {"numeros": [0, -1, 7, 2**53, 1.5, 0.1, -2.25], "vacio": {}, "nulo": None, "si": True},
    {"anidado": {"z": 1, "a": [{"b": "c", "aa": "d"}], "mm": "e"}, "": "clave vacía"},
]


async def test_the_body_is_the_bytes_the_decoded_envelope_made(outbox) -> None:
    """Same bytes as json.dumps of the envelope read back, same event for a consumer."""
    db, tables = outbox
    traceparent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    sent = [envelope(data) for data in TRICKY_DATA]
    sent.append(envelope({"x": 1}, subject="REG/2026/E/000001", traceparent=traceparent))
    await write(db, tables, *sent)
    stored = await rows(db, tables)
    transport = Recording()

    assert await relay(db, tables, transport).drain() == len(sent)

    by_id = {m.message_id: m for m in transport.published}
    assert set(by_id) == {e["id"] for e in sent}
    for original in sent:
        message = by_id[original["id"]]
        decoded = stored[original["id"]].envelope
        # What the relay published before it sent the stored text.
        assert message.body == json.dumps(decoded, ensure_ascii=False).encode()
        assert json.loads(message.body) == original
        event = parse_envelope(message.body, content_type=message.content_type)
        assert event.envelope == original
        assert event.id == original["id"]
        assert event.tenant == TENANT
        assert message.routing_key == EVENT.routing_key(TENANT)
        expected = {"tenantid": TENANT, "ce-type": EVENT.ce_type}
        if original.get("traceparent"):
            expected["traceparent"] = original["traceparent"]
        assert message.headers == expected
    assert all(row.sent for row in (await rows(db, tables)).values())


async def test_numbers_reach_consumers_as_the_decoded_envelope_had_them(outbox) -> None:
    """PostgreSQL prints 1e-07 as 0.0000001 (other bytes than json.dumps of the decoded
    envelope, the same value); 1.5e300 it keeps as an integer, as it always did."""
    db, tables = outbox
    sent = envelope({"pequeno": 1e-07, "grande": 1.5e300})
    await write(db, tables, sent)
    decoded = (await rows(db, tables))[sent["id"]].envelope
    before = json.dumps(decoded, ensure_ascii=False).encode()
    transport = Recording()

    await relay(db, tables, transport).drain()

    (message,) = transport.published
    assert message.body != before
    assert parse_envelope(message.body).envelope == parse_envelope(before).envelope
    assert parse_envelope(message.body).data["pequeno"] == 1e-07


async def test_a_row_is_sent_only_once_the_transport_confirmed_it(outbox) -> None:
    db, tables = outbox
    event = envelope({"x": 1})
    await write(db, tables, event)
    transport = Recording()
    transport.gate.clear()
    draining = asyncio.create_task(relay(db, tables, transport).drain())

    await eventually(lambda: transport.waiting == 1)
    assert not (await rows(db, tables))[event["id"]].sent
    transport.gate.set()

    assert await draining == 1
    assert (await rows(db, tables))[event["id"]].sent


async def test_a_failure_is_recorded_on_its_own_row_and_retried(outbox) -> None:
    db, tables = outbox
    good, bad = envelope({"n": 1}), envelope({"n": 2})
    await write(db, tables, good, bad)
    transport = Recording(refuse=lambda m: m.message_id == bad["id"])

    with pytest.raises(TransportUnavailable, match="refused"):
        await relay(db, tables, transport).drain()

    after = await rows(db, tables)
    assert after[good["id"]].sent and after[good["id"]].attempts == 0
    assert not after[bad["id"]].sent
    assert after[bad["id"]].attempts == 1
    assert after[bad["id"]].last_error == f"refused {bad['id']}"

    transport.refuse = lambda _: False
    assert await relay(db, tables, transport).drain() == 1
    after = await rows(db, tables)
    assert after[bad["id"]].sent and after[bad["id"]].last_error is None
    assert [m.message_id for m in transport.published] == [good["id"], bad["id"]]


async def test_an_envelope_without_its_attributes_fails_on_its_row(outbox) -> None:
    db, tables = outbox
    broken = envelope({"n": 1})
    del broken["type"]
    await write(db, tables, broken)

    with pytest.raises(ValueError, match="lacks its id, tenantid or type"):
        await relay(db, tables, Recording()).drain()

    row = (await rows(db, tables))[broken["id"]]
    assert not row.sent and row.attempts == 1


async def test_rows_another_relay_holds_are_skipped(outbox) -> None:
    """SKIP LOCKED: a second relay publishes what the first has not claimed, never the same."""
    db, tables = outbox
    first_batch = [envelope({"n": n}) for n in range(3)]
    await write(db, tables, *first_batch)
    held = Recording()
    held.gate.clear()
    first = asyncio.create_task(relay(db, tables, held, batch_size=3).drain())
    await eventually(lambda: held.waiting == 3)
    later = [envelope({"n": n}) for n in range(3, 5)]
    await write(db, tables, *later)

    other = Recording()
    assert await relay(db, tables, other, batch_size=3).drain() == 2
    assert [m.message_id for m in other.published] == [e["id"] for e in later]

    held.gate.set()
    assert await first == 3
    assert {m.message_id for m in held.published} == {e["id"] for e in first_batch}


async def test_an_abandoned_batch_leaves_its_rows_for_the_next_start(outbox) -> None:
    """stop() past its grace cancels the batch: nothing marked, and the pool still works."""
    db, tables = outbox
    event = envelope({"n": 1})
    await write(db, tables, event)
    stuck = Recording()
    stuck.gate.clear()
    first = relay(db, tables, stuck)
    first.start()
    await eventually(lambda: stuck.waiting == 1)

    await first.stop(grace=0.1)

    row = (await rows(db, tables))[event["id"]]
    assert not row.sent and row.attempts == 0
    second_transport = Recording()
    second = relay(db, tables, second_transport)
    second.start()
    try:
        await eventually(lambda: len(second_transport.published) == 1)
    finally:
        await second.stop()
    assert (await rows(db, tables))[event["id"]].sent


async def test_a_commit_during_a_drain_is_relayed_without_waiting_for_the_poll(outbox) -> None:
    """The wake-up of a commit made while a batch is out runs another drain at once."""
    db, tables = outbox
    await write(db, tables, envelope({"n": 1}))
    transport = Recording()
    transport.gate.clear()
    running = OutboxRelay(db=db, tables=tables, transport=transport, poll_seconds=60)
    running.start()
    try:
        running.wake()
        await eventually(lambda: transport.waiting == 1)
        await write(db, tables, envelope({"n": 2}))
        running.wake()
        transport.gate.set()
        await eventually(lambda: len(transport.published) == 2, timeout=5)
    finally:
        await running.stop()
