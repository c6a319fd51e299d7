"""Benchmark: the outbox relay's CPU per event, beside raw aio-pika publishing of the same bodies.

Run with ``python -m tests.bench.outbox_relay``. Needs the real PostgreSQL and RabbitMQ.
Every state change writes its events to an outbox and the relay publishes them, so in
the whole document chain each asiento costs about fifteen relayed events: the relay's
CPU per event is paid many times over. This benchmark measures it apart from the rest
of the platform, in two shapes:

* **backlog**: N events pending, drained in batches (a burst, or a relay that was down);
* **one by one**: one event committed, the relay drained, again and again (a quiet
  platform, where every event pays a whole batch's fixed cost alone).

Each shape is timed with the relay (``OutboxRelay.drain`` on the AMQP transport, tracing
configured as the platform configures it) and, in the same run, with the baseline: the
same bodies published with plain aio-pika on a confirming channel, concurrently per
batch, and nothing else (no database). CPU is this process's (``time.process_time``),
so PostgreSQL's and RabbitMQ's own work is left out of both; the ratio says how much the
relay costs on top of publishing. Messages go to a durable queue of the run's own
exchange, deleted at the end with the scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
import asyncpg
from sqlalchemy import MetaData

from services.common.bus.amqp import AmqpTransport
from services.common.bus.envelope import EventName, build_envelope
from services.common.bus.outbox import OutboxRelay
from services.common.db import Database
from services.common.kernel_tables import kernel_tables
from services.common.settings import load_settings
from services.common.telemetry import configure_telemetry
from tests.bench.common import PlatformRun, cpu_model, machine
from tests.support.servers import AMQP_URL

SCHEMA = "bench_outbox"
TENANT = "28079"
EVENT = EventName.parse("registro.asiento.registrado.v1")
BATCH = 100

_INSERT = (
    f"INSERT INTO {SCHEMA}.outbox (event_id, tenant_id, routing_key, envelope) "
    "VALUES ($1, $2, $3, $4::jsonb)"
)


@dataclass(frozen=True)
class Figure:
    """One timed phase: how many events, the process's CPU and the wall-clock time."""

    events: int
    cpu: float
    wall: float

    @property
    def cpu_ms_per_event(self) -> float:
        return self.cpu / self.events * 1000

    @property
    def per_second(self) -> float:
        return self.events / self.wall


def envelope(number: int) -> dict[str, object]:
    """An envelope the size and shape of an asiento's (non-ASCII text, a traceparent)."""
    return build_envelope(
        EVENT,
        tenant=TENANT,
        data={
            "asiento_id": str(uuid.uuid4()),
            "numero": f"REG/2026/E/{number:06d}",
            "tipo": "entrada",
            "oficina": "O00001234",
            "libro": "general",
            "fecha_registro": "2026-12-07T10:11:12.345678+00:00",
            "resumen": "Solicitud de licencia de obra menor — reforma de baño, 2.º piso",
            "interesados": [
                {"tipo_identificador": "NIF", "identificador": "12345678Z", "nombre": "Begoña"}
            ],
            "unidad_destino": "L01280796",
            "procedimiento": "licencia-obra-menor",
            "anexos": [],
        },
        dataschema="https://consistorio.es/contracts/registro.asiento.registrado.v1.json",
        subject=f"REG/2026/E/{number:06d}",
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
    )


async def write_events(conn: asyncpg.Connection, envelopes: Sequence[dict[str, object]]) -> None:
    """Commits the envelopes to the outbox, as the unit of work would (one transaction)."""
    routing_key = EVENT.routing_key(TENANT)
    await conn.executemany(
        _INSERT,
        [(str(e["id"]), TENANT, routing_key, json.dumps(e, ensure_ascii=False)) for e in envelopes],
    )


async def timed(step: Callable[[], Awaitable[int]], rounds: int) -> Figure:
    """Runs ``step`` ``rounds`` times, counting the events it reports and its CPU."""
    events, cpu, wall = 0, 0.0, 0.0
    for _ in range(rounds):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        events += await step()
        cpu += time.process_time() - cpu0
        wall += time.perf_counter() - wall0
    return Figure(events, cpu, wall)


async def relay_figures(
    run: PlatformRun, conn: asyncpg.Connection, backlog: int, one_by_one: int
) -> tuple[Figure, Figure]:
    """The relay draining a backlog, then one event at a time."""
    tables = kernel_tables(MetaData(schema=SCHEMA))
    db = Database(run.db_url, pool_size=2, label="bench")
    transport = AmqpTransport(AMQP_URL, exchange=run.exchange)
    relay = OutboxRelay(db=db, tables=tables, transport=transport, batch_size=BATCH)
    try:
        await transport.start()
        # Warm-up: connections opened, statements prepared, code paths run once.
        await write_events(conn, [envelope(i) for i in range(BATCH * 2)])
        await relay.drain()

        await write_events(conn, [envelope(i) for i in range(backlog)])
        bulk = await timed(relay.drain, 1)

        single = await timed_drains(conn, relay, one_by_one)
        return bulk, single
    finally:
        await transport.close()
        await db.dispose()


async def timed_drains(conn: asyncpg.Connection, relay: OutboxRelay, rounds: int) -> Figure:
    """One event committed, then one drain timed; ``rounds`` times."""
    events, cpu, wall = 0, 0.0, 0.0
    for i in range(rounds):
        await write_events(conn, [envelope(i)])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        events += await relay.drain()
        cpu += time.process_time() - cpu0
        wall += time.perf_counter() - wall0
    return Figure(events, cpu, wall)


async def baseline_figures(
    run: PlatformRun, backlog: int, one_by_one: int
) -> tuple[Figure, Figure]:
    """Plain aio-pika: the same bodies and headers, persistent, confirmed, batch by batch."""
    routing_key = EVENT.routing_key(TENANT)
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            run.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )

        def message(e: dict[str, object]) -> aio_pika.Message:
            return aio_pika.Message(
                body=json.dumps(e, ensure_ascii=False).encode(),
                message_id=str(e["id"]),
                content_type="application/cloudevents+json",
                headers={
                    "tenantid": TENANT,
                    "ce-type": str(e["type"]),
                    "traceparent": str(e["traceparent"]),
                },
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )

        async def publish(bodies: Sequence[aio_pika.Message]) -> int:
            await asyncio.gather(*(exchange.publish(m, routing_key=routing_key) for m in bodies))
            return len(bodies)

        warm = [message(envelope(i)) for i in range(BATCH)]
        await publish(warm)

        # The relay reads envelopes as it goes; building the messages is timed here too.
        bulk_envelopes = [envelope(i) for i in range(backlog)]

        async def bulk_step() -> int:
            sent = 0
            for start in range(0, len(bulk_envelopes), BATCH):
                chunk = bulk_envelopes[start : start + BATCH]
                sent += await publish([message(e) for e in chunk])
            return sent

        bulk = await timed(bulk_step, 1)
        singles = [envelope(i) for i in range(one_by_one)]

        async def one_step() -> int:
            return await publish([message(singles.pop())])

        single = await timed(one_step, one_by_one)
        return bulk, single
    finally:
        await connection.close()


async def sink(
    run: PlatformRun,
) -> tuple[aio_pika.abc.AbstractConnection, aio_pika.abc.AbstractQueue]:
    """A durable queue bound to every event of the run, so the broker stores what it confirms."""
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        run.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(f"{run.queue_prefix}sink", durable=True)
    await queue.bind(exchange, routing_key="#")
    return connection, queue


async def main(args: argparse.Namespace) -> None:
    configure_telemetry(load_settings(), service_name="bench-outbox")
    run = await PlatformRun.create()
    try:
        conn = await asyncpg.connect(run.db_url)
        try:
            await conn.execute(f"CREATE SCHEMA {SCHEMA}")
            db = Database(run.db_url, pool_size=1, label="bench")
            async with db.engine.begin() as sa:
                await sa.run_sync(kernel_tables(MetaData(schema=SCHEMA)).outbox.metadata.create_all)
            await db.dispose()
            sink_connection, queue = await sink(run)
            try:
                print("relay: backlog and one by one", file=sys.stderr)
                relay_bulk, relay_single = await relay_figures(
                    run, conn, args.events, args.one_by_one
                )
                relayed = await queue.declare()
                await queue.purge()
                print("baseline: raw aio-pika", file=sys.stderr)
                raw_bulk, raw_single = await baseline_figures(run, args.events, args.one_by_one)
                await queue.purge()
            finally:
                await sink_connection.close()
        finally:
            await conn.close()
    finally:
        await run.close()
    expected = BATCH * 2 + args.events + args.one_by_one
    assert relayed.message_count == expected, (relayed.message_count, expected)

    print(f"\nMachine: {cpu_model()}, {machine()}; PostgreSQL {run.database.server_version}.")
    print(
        f"Batches of {BATCH}; backlog of {args.events:,d} events, then {args.one_by_one:,d} "
        "events one at a time. CPU is the benchmark process's only.\n"
    )
    print("| what | events/s | CPU ms per event | relay ÷ raw (CPU) |")
    print("|---|---:|---:|---:|")
    rows = [
        ("relay, backlog", relay_bulk, raw_bulk),
        ("raw aio-pika, backlog", raw_bulk, raw_bulk),
        ("relay, one by one", relay_single, raw_single),
        ("raw aio-pika, one by one", raw_single, raw_single),
    ]
    for label, figure, base in rows:
        print(
            f"| {label} | {figure.per_second:,.0f} | {figure.cpu_ms_per_event:.3f} "
            f"| {figure.cpu_ms_per_event / base.cpu_ms_per_event:.2f} |"
        )


def _arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000, help="the backlog drained at once")
    parser.add_argument("--one-by-one", type=int, default=500, help="events drained singly")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
