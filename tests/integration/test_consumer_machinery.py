"""The shared machinery of every consumer delivery, made cheaper, still does what it did
(real PostgreSQL): rows sent by a statement cached per shape are the rows a statement
built per row wrote, the inbox claim built once still skips a redelivery, and the tenant
bound by the driver itself still confines the transaction under row-level security."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from services.bootstrap import Platform, build_platform
from services.common.bus.consumer import EventConsumer
from services.common.bus.envelope import EventName, ReceivedEvent, build_envelope
from services.common.bus.inprocess import InProcessTransport
from services.common.db import Database, tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor, UnitOfWork
from tests.support.platforms import DirectDelivery

pytestmark = pytest.mark.integration

_ACTOR = Actor(sub="prueba-maquinaria", client_ip="10.0.0.7", request_id="maquinaria")
ANULADO = "registro.asiento.anulado.v1"
_EXAMPLE = Path(__file__).parents[2] / "bus-contracts/examples/registro/asiento-anulado/v1"


@pytest.fixture
async def registro(settings: Settings) -> AsyncIterator[Platform]:
    platform = await build_platform(settings, ["registro"], transport=InProcessTransport())
    yield platform
    await platform.close()


def _audit_rows(platform: Platform, entity: str) -> Any:
    audit = platform.runtimes["registro"].tables.audit_log
    return (
        select(
            audit.c.tenant_id,
            audit.c.actor,
            audit.c.action,
            audit.c.entity_id,
            audit.c.old_values,
            audit.c.new_values,
            audit.c.client_ip,
            audit.c.request_id,
        )
        .where(audit.c.entity == entity)
        .order_by(audit.c.id)
    )


async def test_rows_from_the_cached_statement_are_the_rows_a_built_statement_writes(
    registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    audit = runtime.tables.audit_log
    cached, built = f"cache-{uuid.uuid4().hex[:8]}", f"hecho-{uuid.uuid4().hex[:8]}"
    entries = [
        {"entity_id": "1", "old": None, "new": {"a": 1, "texto": "Peñíscola"}},
        {"entity_id": "2", "old": {"a": 1}, "new": None},
        {"entity_id": "3", "old": {"lista": [1, 2]}, "new": {"a": "x'; --"}},
    ]
    # Twice, so the second commit runs the statement the first one cached.
    for _ in range(2):
        async with runtime.unit_of_work(tenant, _ACTOR) as uow:
            for e in entries:
                uow.audit(action="probar", entity=cached, **e)
    for _ in range(2):
        async with runtime.unit_of_work(tenant, _ACTOR) as uow:
            for e in entries:
                uow.defer(
                    insert(audit).values(
                        tenant_id=tenant,
                        actor=_ACTOR.sub,
                        action="probar",
                        entity=built,
                        entity_id=e["entity_id"],
                        old_values=e["old"],
                        new_values=e["new"],
                        client_ip=_ACTOR.client_ip,
                        request_id=_ACTOR.request_id,
                    )
                )

    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        from_cache = (await uow.session.execute(_audit_rows(registro, cached))).all()
        from_built = (await uow.session.execute(_audit_rows(registro, built))).all()
    assert len(from_cache) == 6
    assert [tuple(r) for r in from_cache] == [tuple(r) for r in from_built]
    # Each row kept its own values: no two positions shared a parameter.
    assert sorted(r.entity_id for r in from_cache) == ["1", "1", "2", "2", "3", "3"]


async def test_rows_added_events_and_sql_expressions_commit_together(
    registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    audit, outbox = runtime.tables.audit_log, runtime.tables.outbox
    entity = f"mezcla-{uuid.uuid4().hex[:8]}"
    data = json.loads((_EXAMPLE / "minimal.json").read_text(encoding="utf-8"))
    row = {
        "tenant_id": tenant,
        "actor": "a",
        "action": "probar",
        "entity": entity,
        "entity_id": "expr",
    }
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        uow.add(audit, {**row, "new_values": func.jsonb_build_object("hecho", True)})
        uow.add(audit, {**row, "entity_id": "plano", "new_values": {"hecho": False}})
        uow.emit(ANULADO, {**data, "motivo": entity})
    # A row changed after add() is written as it was when added.
    later = {**row, "entity_id": "antes"}
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        uow.add(audit, later)
        later["entity_id"] = "despues"

    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        written = dict(
            (
                await uow.session.execute(
                    select(audit.c.entity_id, audit.c.new_values).where(audit.c.entity == entity)
                )
            ).all()
        )
        events = await uow.session.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.envelope["data"]["motivo"].astext == entity)
        )
    assert written == {"expr": {"hecho": True}, "plano": {"hecho": False}, "antes": None}
    assert events == 1


async def test_rows_and_a_deferred_update_in_one_statement_each_write_their_own(
    registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    audit, counters = runtime.tables.audit_log, runtime.tables.counters
    entity = f"mixta-{uuid.uuid4().hex[:8]}"
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        await uow.next_number(entity, 2026)
    for n in (1, 2):
        async with runtime.unit_of_work(tenant, _ACTOR) as uow:
            uow.audit(action="probar", entity=entity, entity_id=f"fila-{n}", new={"n": n})
            uow.defer(
                update(counters)
                .where(counters.c.serie == entity, counters.c.anio == 2026)
                .values(ultimo=100 + n)
            )
            uow.add(audit, {**_plain_audit(tenant, entity, f"otra-{n}"), "new_values": {"m": n}})

    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        written = {
            r.entity_id: (r.action, r.new_values)
            for r in (await uow.session.execute(_audit_rows(registro, entity))).all()
        }
        ultimo = await uow.session.scalar(
            select(counters.c.ultimo).where(counters.c.serie == entity)
        )
    assert written == {
        "fila-1": ("probar", {"n": 1}),
        "fila-2": ("probar", {"n": 2}),
        "otra-1": ("probar", {"m": 1}),
        "otra-2": ("probar", {"m": 2}),
    }
    assert ultimo == 102


def _plain_audit(tenant: str, entity: str, entity_id: str) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "actor": "a",
        "action": "probar",
        "entity": entity,
        "entity_id": entity_id,
    }


@pytest.mark.parametrize(
    "event_id",
    [
        None,
        # Not plainly safe to write into SQL: the claim is then bound, not sent with BEGIN.
        "id'); DELETE FROM inbox; --",
    ],
)
async def test_a_redelivered_event_is_applied_once_per_consumer(
    registro: Platform, new_tenant: Callable[..., Any], event_id: str | None
) -> None:
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    data = json.loads((_EXAMPLE / "minimal.json").read_text(encoding="utf-8"))
    event = build_envelope(
        EventName.parse(ANULADO),
        tenant=tenant,
        data=data,
        dataschema=registro.contracts.schema_uri(ANULADO),
    )
    if event_id is not None:
        event["id"] = f"{event_id} {uuid.uuid4()}"
    applied: list[tuple[str, str]] = []

    def consumer(name: str) -> EventConsumer:
        async def handler(uow: UnitOfWork, received: ReceivedEvent) -> None:
            applied.append((name, received.id))
            uow.audit(action="aplicar", entity=name, entity_id=received.id)

        return EventConsumer(
            name=name,
            queue=f"pruebas.{name}",
            events=[ANULADO],
            handler=handler,
            db=runtime.db,
            tables=runtime.tables,
            contracts=registro.contracts,
        )

    first, second = (consumer(f"pruebas.maquinaria-{uuid.uuid4().hex[:6]}") for _ in range(2))
    deliveries = [DirectDelivery(event, ANULADO) for _ in range(3)]
    for delivery in deliveries:
        await first.on_delivery(delivery)
    await second.on_delivery(DirectDelivery(event, ANULADO))

    assert all(d.acked for d in deliveries)
    assert applied == [(first.name, event["id"]), (second.name, event["id"])]
    inbox = runtime.tables.inbox
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        claims = (
            await uow.session.execute(
                select(inbox.c.consumer, inbox.c.tenant_id, inbox.c.event_type).where(
                    inbox.c.event_id == event["id"]
                )
            )
        ).all()
    assert sorted(claims) == sorted([(first.name, tenant, ANULADO), (second.name, tenant, ANULADO)])


async def test_the_bound_tenant_confines_each_transaction_on_a_reused_connection(
    settings: Settings, registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    a, b = await new_tenant(), await new_tenant()
    runtime = registro.runtimes["registro"]
    entity = f"aislado-{uuid.uuid4().hex[:8]}"
    async with runtime.unit_of_work(a, _ACTOR) as uow:
        uow.audit(action="probar", entity=entity, entity_id="de-a")
    with pytest.raises(RuntimeError):
        async with runtime.unit_of_work(a, _ACTOR) as uow:
            uow.audit(action="probar", entity=entity, entity_id="revertido")
            await uow.session.execute(text("SELECT 1"))
            raise RuntimeError("deshacer")

    # One pooled connection, so every transaction below reuses the same one.
    db = Database(settings.app_database_url(), pool_size=1, max_overflow=0)
    audit = runtime.tables.audit_log
    visible = select(audit.c.entity_id).where(audit.c.entity == entity)
    try:
        for tenant, expected in ((a, ["de-a"]), (b, []), (a, ["de-a"])):
            async with tenant_transaction(db, tenant) as session:
                assert await session.scalar(text("SELECT current_setting('app.tenant_id')")) == (
                    tenant
                )
                assert list((await session.execute(visible)).scalars()) == expected
        # An id that is no INE code travels as a parameter, unchanged.
        odd = "x'); SELECT 1; --"
        async with tenant_transaction(db, odd) as session:
            assert await session.scalar(text("SELECT current_setting('app.tenant_id')")) == odd
            assert list((await session.execute(visible)).scalars()) == []
        # A statement failing inside leaves the connection usable, its transaction undone.
        with pytest.raises(DBAPIError):
            async with tenant_transaction(db, a) as session:
                await session.execute(text("SELECT 1/0"))
        async with tenant_transaction(db, b) as session:
            assert await session.scalar(text("SELECT current_setting('app.tenant_id')")) == b
        # The setting was the transaction's own.
        async with db.engine.connect() as conn:
            left = await conn.scalar(text("SELECT current_setting('app.tenant_id', true)"))
        assert left in (None, "")
    finally:
        await db.dispose()
