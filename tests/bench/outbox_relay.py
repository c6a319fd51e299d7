"""Benchmark: the outbox relay's CPU per event, beside raw aio-pika publishing of the same bodies.

Run with ``python -m tests.bench.outbox_relay``. Needs the real PostgreSQL and RabbitMQ.
Every state change writes its events to an outbox and the relay publishes them, so in
the whole document chain each asiento costs about fifteen relayed events: the relay's
CPU per event is paid many times over. This benchmark measures it apart from the rest
of the platform, in two shapes:

* **backlog**: N events pending, drained in batches (a burst, or a relay that was down);
* **one by one**: one event committed, the relay drained, again and again (a quiet
  platform, where every event pays a whole batch's fixed cost alone).

Each shape is timed with the relay (``OutboxRelay.drain``, tracing configured as the
platform configures it) and, in the same run, with a baseline that publishes the same
bodies with the same properties, concurrently per batch, and touches no database:

* on RabbitMQ, plain aio-pika on a confirming channel (what any publisher pays);
* on the in-process bus of embedded mode, the transport's own ``publish_safely`` to one
  queue whose consumer acks at once (the relay waits for that ack, and so does this).

Rounds alternate relay and baseline and the median round is reported, since the figures
are taken on a machine other work may share. CPU is this process's
(``time.process_time``), so PostgreSQL's and RabbitMQ's own work is left out of both;
the ratio says how much the relay costs on top of publishing. Messages go to a durable
queue of the run's own exchange, counted and deleted at the end with the scratch
database.
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
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.outbox import OutboxRelay
from services.common.bus.transport import Delivery, OutgoingMessage, Transport
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


async def timed(step: Callable[[], Awaitable[int]], rounds: int = 1) -> Figure:
    """Runs ``step`` ``rounds`` times, counting the events it reports and its CPU."""
    events, cpu, wall = 0, 0.0, 0.0
    for _ in range(rounds):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        events += await step()
        cpu += time.process_time() - cpu0
        wall += time.perf_counter() - wall0
    return Figure(events, cpu, wall)


def outgoing(e: dict[str, object]) -> OutgoingMessage:
    """The message the relay makes of an envelope (body, id, headers), for the baselines."""
    return OutgoingMessage(
        routing_key=EVENT.routing_key(TENANT),
        body=json.dumps(e, ensure_ascii=False).encode(),
        message_id=str(e["id"]),
        headers={
            "tenantid": TENANT,
            "ce-type": str(e["type"]),
            "traceparent": str(e["traceparent"]),
        },
    )


class Bench:
    """One transport kind: its relay and its baseline, each timed on the same events."""

    def __init__(self, run: PlatformRun, conn: asyncpg.Connection, kind: str) -> None:
        self.run, self.conn, self.kind = run, conn, kind
        self.tables = kernel_tables(MetaData(schema=SCHEMA))
        self.db = Database(run.db_url, pool_size=2, label="bench")
        self.transport: Transport
        if kind == "amqp":
            self.transport = AmqpTransport(AMQP_URL, exchange=run.exchange)
        else:
            self.transport = InProcessTransport()
        self.relay = OutboxRelay(
            db=self.db, tables=self.tables, transport=self.transport, batch_size=BATCH
        )
        self._raw: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> None:
        """Connects, subscribes the in-process bus's one acking consumer, warms every path up."""
        await self.transport.start()
        if self.kind == "amqp":
            self._raw = await aio_pika.connect(AMQP_URL)
            channel = await self._raw.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(
                self.run.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
        else:

            async def ack(delivery: Delivery) -> None:
                await delivery.ack()

            await self.transport.subscribe("sink", ["#"], ack)
        await write_events(self.conn, [envelope(i) for i in range(BATCH * 2)])
        await self.relay.drain()
        await self.publish_raw([envelope(i) for i in range(BATCH)])

    async def close(self) -> None:
        await self.transport.close()
        if self._raw is not None:
            await self._raw.close()
        await self.db.dispose()

    async def publish_raw(self, envelopes: Sequence[dict[str, object]]) -> int:
        """The baseline: the envelopes published concurrently, each awaited to its confirm.

        On RabbitMQ, plain aio-pika on a confirming channel; in process, the transport's
        own ``publish_safely``. Making the message of the envelope is counted, as the
        relay's reading of it is.
        """
        if self._exchange is None:
            await asyncio.gather(*(self.transport.publish_safely(outgoing(e)) for e in envelopes))
            return len(envelopes)
        exchange = self._exchange
        messages = [
            aio_pika.Message(
                body=m.body,
                message_id=m.message_id,
                content_type=m.content_type,
                headers=dict(m.headers),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            for m in map(outgoing, envelopes)
        ]
        routing_key = EVENT.routing_key(TENANT)
        await asyncio.gather(*(exchange.publish(m, routing_key=routing_key) for m in messages))
        return len(messages)

    async def relay_backlog(self, events: int) -> Figure:
        await write_events(self.conn, [envelope(i) for i in range(events)])
        return await timed(self.relay.drain)

    async def raw_backlog(self, events: int) -> Figure:
        pending = [envelope(i) for i in range(events)]

        async def batches() -> int:
            return sum(
                [await self.publish_raw(pending[i : i + BATCH]) for i in range(0, events, BATCH)]
            )

        return await timed(batches)

    async def relay_one_by_one(self, events: int) -> Figure:
        """One event committed, then one drain timed (the commit is not the relay's)."""
        total = Figure(0, 0.0, 0.0)
        for i in range(events):
            await write_events(self.conn, [envelope(i)])
            figure = await timed(self.relay.drain)
            total = Figure(
                total.events + figure.events, total.cpu + figure.cpu, total.wall + figure.wall
            )
        return total

    async def raw_one_by_one(self, events: int) -> Figure:
        pending = [envelope(i) for i in range(events)]
        return await timed(lambda: self.publish_raw([pending.pop()]), events)


def median(figures: Sequence[Figure]) -> Figure:
    """The round with the median CPU per event (rounds alternate relay and baseline, so a
    neighbour's burst on the shared machine hits both)."""
    return sorted(figures, key=lambda f: f.cpu_ms_per_event)[len(figures) // 2]


async def measure(
    run: PlatformRun, conn: asyncpg.Connection, kind: str, args: argparse.Namespace
) -> list[tuple[str, Figure, Figure]]:
    """The four figures of one transport kind, each the median of ``args.rounds`` rounds."""
    bench = Bench(run, conn, kind)
    try:
        await bench.start()
        shapes: dict[str, list[Figure]] = {name: [] for name in ("rb", "bb", "r1", "b1")}
        for round_ in range(args.rounds):
            print(f"  {kind}: round {round_ + 1} of {args.rounds}", file=sys.stderr)
            shapes["rb"].append(await bench.relay_backlog(args.events))
            shapes["bb"].append(await bench.raw_backlog(args.events))
            shapes["r1"].append(await bench.relay_one_by_one(args.one_by_one))
            shapes["b1"].append(await bench.raw_one_by_one(args.one_by_one))
    finally:
        await bench.close()
    rb, bb, r1, b1 = (median(shapes[name]) for name in ("rb", "bb", "r1", "b1"))
    raw = "raw aio-pika" if kind == "amqp" else "transport's publish_safely"
    where = "RabbitMQ" if kind == "amqp" else "in-process bus"
    return [
        (f"relay, backlog, {where}", rb, bb),
        (f"{raw}, backlog", bb, bb),
        (f"relay, one by one, {where}", r1, b1),
        (f"{raw}, one by one", b1, b1),
    ]


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
    rows: list[tuple[str, Figure, Figure]] = []
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
                for kind in args.transports:
                    rows += await measure(run, conn, kind, args)
                    if kind == "amqp":
                        stored = (await queue.declare()).message_count
                        await queue.purge()
                        per_round = 2 * (args.events + args.one_by_one)
                        expected = BATCH * 3 + args.rounds * per_round
                        assert stored == expected, (
                            f"{stored} messages reached RabbitMQ, not {expected}"
                        )
            finally:
                await sink_connection.close()
        finally:
            await conn.close()
    finally:
        await run.close()

    print(f"\nMachine: {cpu_model()}, {machine()}; PostgreSQL {run.database.server_version}.")
    print(
        f"Batches of {BATCH}; a backlog of {args.events:,d} events, then {args.one_by_one:,d} "
        f"events one at a time; median of {args.rounds} rounds. CPU is this process's only.\n"
    )
    print("| what | events/s | CPU ms per event | relay ÷ baseline (CPU) |")
    print("|---|---:|---:|---:|")
    for label, figure, base in rows:
        print(
            f"| {label} | {figure.per_second:,.0f} | {figure.cpu_ms_per_event:.3f} "
            f"| {figure.cpu_ms_per_event / base.cpu_ms_per_event:.2f} |"
        )


def _arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000, help="the backlog drained at once")
    parser.add_argument("--one-by-one", type=int, default=300, help="events drained singly")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--transports", nargs="+", choices=["amqp", "inprocess"], default=["amqp", "inprocess"]
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
