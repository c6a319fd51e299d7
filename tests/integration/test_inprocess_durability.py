"""The in-process bus loses nothing when the process dies between hand-off and inbox.

An outbox row counts as sent only once every consumer bound to it has settled its
copy; a process that dies earlier leaves the row unsent, and the next start
delivers it again: the consumer that had not recorded it applies it, the one
that had skips it through its inbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from services.bootstrap import build_platform
from services.common.bus.envelope import ReceivedEvent
from services.common.bus.inprocess import InProcessTransport
from services.common.db import tenant_transaction
from services.common.runtime import ConsumerSpec, ServiceRuntime
from services.common.settings import Settings
from services.common.uow import Actor, UnitOfWork
from services.tramitador import models
from tests.integration.test_bus_reliability import ASIENTO_REGISTRADO, asiento_event
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def _runtime(
    platform: Any, settings: Settings, transport: InProcessTransport, rapido: Any, lento: Any
) -> ServiceRuntime:
    """A tramitador with two consumers of the same event, one quick and one slow."""
    consumers = [
        ConsumerSpec("durable-rapido", [ASIENTO_REGISTRADO], rapido),
        ConsumerSpec("durable-lento", [ASIENTO_REGISTRADO], lento),
    ]
    return ServiceRuntime(
        name="tramitador",
        settings=settings,
        db=platform.db,
        tables=models.kernel,
        contracts=platform.contracts,
        transport=transport,
        verifier=platform.verifier,
        consumers=consumers,
    )


async def test_event_handed_over_but_not_in_an_inbox_is_delivered_after_a_restart(
    settings: Settings, new_tenant
) -> None:
    tenant = await new_tenant()
    platform = await build_platform(settings, [], transport=InProcessTransport())
    applied: dict[str, list[str]] = {"rapido": [], "lento": []}
    entered = asyncio.Event()

    async def rapido(uow: UnitOfWork, event: ReceivedEvent) -> None:
        applied["rapido"].append(event.id)

    async def muere_antes_de_su_inbox(uow: UnitOfWork, event: ReceivedEvent) -> None:
        entered.set()
        await asyncio.Event().wait()  # the process dies here, before this commit

    async def lento(uow: UnitOfWork, event: ReceivedEvent) -> None:
        applied["lento"].append(event.id)

    first_bus = InProcessTransport()
    first = _runtime(platform, settings, first_bus, rapido, muere_antes_de_su_inbox)
    event_id = ""
    try:
        async with first.unit_of_work(tenant, Actor.system("prueba")) as uow:
            uow.emit(ASIENTO_REGISTRADO, asiento_event(tenant)["data"])
        outbox, inbox = first.tables.outbox, first.tables.inbox
        await first.start()
        await asyncio.wait_for(entered.wait(), timeout=10)
        await eventually(lambda: len(applied["rapido"]) == 1)
        event_id = applied["rapido"][0]
        # The process dies: whatever was in memory is gone, nothing more commits.
        relay_task = first.relay._task
        assert relay_task is not None
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        await first_bus.close(grace=0)

        async with platform.db.engine.connect() as conn:
            row = (
                await conn.execute(select(outbox.c.sent_at).where(outbox.c.event_id == event_id))
            ).one()
            assert row.sent_at is None, "handed to a queue is not delivered"

        second_bus = InProcessTransport()
        second = _runtime(platform, settings, second_bus, rapido, lento)
        await second.start()
        try:
            await eventually(lambda: applied["lento"] == [event_id], timeout=10)

            async def sent() -> bool:
                async with platform.db.engine.connect() as conn:
                    at = (
                        await conn.execute(
                            select(outbox.c.sent_at).where(outbox.c.event_id == event_id)
                        )
                    ).scalar_one()
                return at is not None

            await eventually(sent, timeout=10)
            # Applied once by each consumer: the fast one skipped its second copy.
            assert applied == {"rapido": [event_id], "lento": [event_id]}
            async with tenant_transaction(platform.db, tenant) as session:
                recorded = (
                    await session.execute(
                        select(inbox.c.consumer).where(inbox.c.event_id == event_id)
                    )
                ).scalars()
                assert sorted(recorded) == ["tramitador.durable-lento", "tramitador.durable-rapido"]
        finally:
            await second.stop()
            await second_bus.close()
    finally:
        await first.stop()
        await first_bus.close()
        await platform.close()


async def test_safe_publish_waits_for_every_queue_and_fails_when_the_bus_closes() -> None:
    """publish_safely returns once each bound queue's copy is settled, and never on close."""
    from tests.integration.test_transport_behaviour import message

    bus = InProcessTransport()
    acked: list[str] = []
    held = asyncio.Event()

    async def acking(delivery) -> None:
        await delivery.ack()
        acked.append(delivery.queue)

    async def holding(delivery) -> None:
        held.set()

    await bus.subscribe("a", ["03014.x.#"], acking)
    await bus.subscribe("b", ["03014.x.#"], holding)
    publishing = asyncio.create_task(bus.publish_safely(message("03014.x.y")))
    await asyncio.wait_for(held.wait(), timeout=5)
    await eventually(lambda: acked == ["a"], timeout=5)
    assert not publishing.done()
    # Nothing bound: dropped at once, as a broker drops an unroutable message.
    await asyncio.wait_for(bus.publish_safely(message("03014.nadie")), timeout=5)
    await bus.close(grace=0)
    with pytest.raises(Exception, match="closed"):
        await asyncio.wait_for(publishing, timeout=5)
