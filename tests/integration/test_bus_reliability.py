"""Bus reliability on real RabbitMQ (and the in-process bus where it applies):
the outbox survives a broker outage, a consumer that dies before acking applies
the event once, an invalid message is dead-lettered with its reason, and a dead
letter can be replayed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.bootstrap import build_platform
from services.common.bus.amqp import AmqpTransport
from services.common.bus.envelope import EventName, build_envelope
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.transport import Delivery, OutgoingMessage, Transport
from services.common.db import Database, tenant_transaction
from services.common.runtime import ConsumerSpec, ServiceRuntime
from services.common.settings import Settings
from services.deadletters import list_dead_letters, replay_dead_letter
from services.tramitador import handlers, models
from tests.support import factories
from tests.support.broker import delete_run
from tests.support.servers import AMQP_URL, require_server
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ASIENTO_REGISTRADO = "registro.asiento.registrado.v1"


@pytest.fixture
async def amqp_settings(settings: Settings) -> AsyncIterator[Settings]:
    """Settings on the real broker with an exchange and queue names of this test alone."""
    require_server("RabbitMQ", "127.0.0.1", 5672)
    run = uuid.uuid4().hex[:8]
    configured = settings.model_copy(
        update={
            "amqp_url": AMQP_URL,
            "bus_exchange": f"consistorio.test.{run}",
            "bus_queue_prefix": f"test.{run}.",
        }
    )
    yield configured
    await delete_run(AMQP_URL, queue_prefix=f"test.{run}.", exchange=f"consistorio.test.{run}")


def asiento_event(tenant: str, **overrides: Any) -> dict[str, Any]:
    """A valid registro.asiento.registrado.v1 envelope for ``tenant``."""
    data = {
        "asiento_id": str(uuid.uuid4()),
        "numero": "E/2026/000007",
        "tipo": "entrada",
        "anio": 2026,
        "secuencia": 7,
        "fecha_registro": "2026-11-23T10:00:00Z",
        "resumen": "Solicitud genérica",
        "unidad_destino": "L01030149",
        "procedimiento": "generico",
        "interesados": [factories.interesado()],
    }
    data.update(overrides)
    return build_envelope(
        EventName.parse(ASIENTO_REGISTRADO),
        tenant=tenant,
        data=data,
        dataschema="https://consistorio.es/bus-contracts/registro/asiento-registrado/v1.json",
    )


async def publish(
    transport: Transport, envelope: dict[str, Any], body: bytes | None = None
) -> None:
    await transport.publish(
        OutgoingMessage(
            routing_key=f"{envelope['tenantid']}.{ASIENTO_REGISTRADO}",
            body=body if body is not None else json.dumps(envelope).encode(),
            message_id=envelope["id"],
        )
    )


async def count_expedientes(db: Database, tenant: str) -> int:
    async with tenant_transaction(db, tenant) as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(models.expedientes))
            ).scalar_one()
        )


async def test_outbox_keeps_events_while_the_broker_is_unreachable(
    amqp_settings, new_tenant, token
) -> None:
    tenant = await new_tenant()
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.up()
    via_proxy = amqp_settings.model_copy(
        update={"amqp_url": f"amqp://guest:guest@127.0.0.1:{proxy.port}/"}
    )
    watcher = AmqpTransport(AMQP_URL, exchange=amqp_settings.bus_exchange)
    await watcher.start()
    received: list[str] = []

    async def watch(delivery: Delivery) -> None:
        received.append(delivery.message_id)
        await delivery.ack()

    await watcher.subscribe(
        f"{amqp_settings.bus_queue_prefix}watch", [f"{tenant}.{ASIENTO_REGISTRADO}"], watch
    )
    platform = await build_platform(via_proxy, ["registro"])
    runtime = platform.runtimes["registro"]
    await runtime.start()
    try:
        await proxy.down()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=platform.apps["registro"]), base_url="http://svc"
        )
        async with client:
            for _ in range(3):
                r = await client.post(
                    "/api/v1/registro/asientos",
                    json=factories.asiento(),
                    headers={"Authorization": f"Bearer {token(tenant, 'registro')}"},
                )
                assert r.status_code == 201
        outbox = runtime.tables.outbox
        await asyncio.sleep(1.5)
        async with runtime.db.engine.connect() as conn:
            pending = (
                await conn.execute(
                    select(outbox.c.event_id, outbox.c.attempts).where(
                        outbox.c.tenant_id == tenant,
                        outbox.c.sent_at.is_(None),
                        outbox.c.routing_key == f"{tenant}.{ASIENTO_REGISTRADO}",
                    )
                )
            ).all()
        assert len(pending) == 3
        assert any(row.attempts > 0 for row in pending)
        assert received == []

        await proxy.up()
        await eventually(lambda: len(received) == 3)
        assert sorted(received) == sorted(row.event_id for row in pending)
        async with runtime.db.engine.connect() as conn:
            unsent = (
                await conn.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(
                        outbox.c.tenant_id == tenant,
                        outbox.c.sent_at.is_(None),
                        outbox.c.routing_key == f"{tenant}.{ASIENTO_REGISTRADO}",
                    )
                )
            ).scalar_one()
        assert unsent == 0
    finally:
        await platform.close()
        await watcher.close()
        await proxy.down()


class _DiesBeforeAck(Delivery):
    """Wraps a delivery whose process 'dies' right after the handler committed."""

    def __init__(self, inner: Delivery, committed: asyncio.Event) -> None:
        self._inner = inner
        self._committed = committed
        for attr in (
            "routing_key",
            "body",
            "message_id",
            "content_type",
            "headers",
            "redelivered",
            "queue",
        ):
            setattr(self, attr, getattr(inner, attr))

    async def ack(self) -> None:
        self._committed.set()
        await asyncio.Event().wait()  # never acks: the connection is closed under it

    async def reject(self, *, requeue: bool) -> None:
        await self._inner.reject(requeue=requeue)


async def test_consumer_dying_before_ack_gets_the_event_again_and_applies_it_once(
    amqp_settings, new_tenant
) -> None:
    tenant = await new_tenant()
    platform = await build_platform(amqp_settings, ["tramitador"])
    runtime = platform.runtimes["tramitador"]
    consumer = runtime.event_consumer(handlers.CONSUMERS[0])
    first = AmqpTransport(amqp_settings.amqp_url, exchange=amqp_settings.bus_exchange)
    await first.start()
    committed = asyncio.Event()

    async def crashing(delivery: Delivery) -> None:
        await consumer.on_delivery(_DiesBeforeAck(delivery, committed))

    bindings = [EventName.parse(ASIENTO_REGISTRADO).binding()]
    await first.subscribe(consumer.queue, bindings, crashing)
    try:
        await publish(platform.transport, asiento_event(tenant))
        await asyncio.wait_for(committed.wait(), timeout=10)
        assert await count_expedientes(runtime.db, tenant) == 1
        await first.close(grace=0.2)  # the process dies: the broker requeues the unacked event

        redelivered: list[bool] = []

        async def recording(delivery: Delivery) -> None:
            redelivered.append(delivery.redelivered)
            await consumer.on_delivery(delivery)

        second = AmqpTransport(amqp_settings.amqp_url, exchange=amqp_settings.bus_exchange)
        await second.start()
        await second.subscribe(consumer.queue, bindings, recording)
        try:
            await eventually(lambda: len(redelivered) == 1, timeout=10)
            await asyncio.sleep(0.3)
            assert redelivered == [True]
            assert await count_expedientes(runtime.db, tenant) == 1
            async with tenant_transaction(runtime.db, tenant) as session:
                inbox = (await session.execute(select(runtime.tables.inbox))).all()
            assert len(inbox) == 1
        finally:
            await second.close()
    finally:
        await first.close()
        await platform.close()


async def dead_letters_of(
    settings: Settings, tenant: str | None = None, consumer: str | None = None
):
    letters = await list_dead_letters(settings)
    return [
        d
        for d in letters
        if (tenant is None or d.tenant_id == tenant)
        and (consumer is None or d.consumer == consumer)
    ]


@pytest.fixture(params=["inprocess", "amqp"])
def bus_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Both transports: the in-process bus and (through amqp_settings) RabbitMQ."""
    if request.param == "inprocess":
        return settings
    configured: Settings = request.getfixturevalue("amqp_settings")
    return configured


async def test_invalid_message_is_dead_lettered_with_its_reason(bus_settings, new_tenant) -> None:
    tenant = await new_tenant()
    transport = None if bus_settings.amqp_url else InProcessTransport()
    platform = await build_platform(bus_settings, ["tramitador"], transport=transport)
    runtime = platform.runtimes["tramitador"]
    await runtime.start()
    try:
        bad = asiento_event(tenant)
        del bad["data"]["numero"]
        await publish(platform.transport, bad)
        letters = await eventually(lambda: dead_letters_of(bus_settings, tenant))
        assert len(letters) == 1
        assert letters[0].message_id == bad["id"]
        assert "numero" in letters[0].reason
        assert letters[0].consumer == "tramitador.asientos"

        garbage = asiento_event(tenant)
        await publish(platform.transport, garbage, body=b"not json at all")
        letters = await eventually(
            lambda: _when_len(
                dead_letters_of(bus_settings, None, "tramitador.asientos"), garbage["id"]
            )
        )
        assert "JSON" in letters[0].reason

        # A publisher allowed only its own council's keys must not act for another.
        other = await new_tenant()
        spoofed = asiento_event(other)
        await platform.transport.publish(
            OutgoingMessage(
                routing_key=f"{tenant}.{ASIENTO_REGISTRADO}",
                body=json.dumps(spoofed).encode(),
                message_id=spoofed["id"],
            )
        )
        letters = await eventually(
            lambda: _when_len(
                dead_letters_of(bus_settings, None, "tramitador.asientos"), spoofed["id"]
            )
        )
        assert "no coincide" in letters[0].reason
        assert await count_expedientes(runtime.db, tenant) == 0
        assert await count_expedientes(runtime.db, other) == 0
    finally:
        await platform.close()


async def _when_len(letters_coro, message_id: str):
    letters = [d for d in await letters_coro if d.message_id == message_id]
    return letters


async def test_failing_handler_is_retried_then_dead_lettered_and_can_be_replayed(
    bus_settings, new_tenant
) -> None:
    tenant = await new_tenant()
    healthy = asyncio.Event()
    applied: list[str] = []
    calls: list[str] = []

    async def fragile(uow, event) -> None:
        calls.append(event.id)
        if not healthy.is_set():
            raise RuntimeError("backoffice caído")
        applied.append(event.id)

    transport = None if bus_settings.amqp_url else InProcessTransport()
    platform = await build_platform(bus_settings, [], transport=transport)
    runtime = ServiceRuntime(
        name="tramitador",
        settings=bus_settings,
        db=platform.db,
        tables=models.kernel,
        contracts=platform.contracts,
        transport=platform.transport,
        verifier=platform.verifier,
        consumers=[ConsumerSpec("fragil", [ASIENTO_REGISTRADO], fragile)],
    )
    await runtime.start()
    try:
        event = asiento_event(tenant)
        await publish(platform.transport, event)
        letters = await eventually(
            lambda: dead_letters_of(bus_settings, tenant, "tramitador.fragil")
        )
        assert len(calls) == bus_settings.bus_max_attempts
        assert "backoffice caído" in letters[0].reason
        assert letters[0].attempts == bus_settings.bus_max_attempts

        healthy.set()
        await replay_dead_letter(bus_settings, letters[0].ref)
        await eventually(lambda: applied == [event["id"]])
        replayed = await dead_letters_of(bus_settings, tenant, "tramitador.fragil")
        assert replayed[0].replayed_at is not None
    finally:
        await runtime.stop()
        await platform.close()
