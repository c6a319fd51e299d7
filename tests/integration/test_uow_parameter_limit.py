"""The unit of work's deferred writes past PostgreSQL's 32,767 parameters a statement:
a large batch still commits whole, cut into statements that fit (real PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine.default import CACHE_HIT

from services.bootstrap import Platform, build_platform
from services.common.bus.inprocess import InProcessTransport
from services.common.settings import Settings
from services.common.uow import Actor

pytestmark = pytest.mark.integration

_ACTOR = Actor(sub="prueba-lote", request_id="lote")


@pytest.fixture
async def registro(settings: Settings) -> AsyncIterator[Platform]:
    platform = await build_platform(settings, ["registro"], transport=InProcessTransport())
    yield platform
    await platform.close()


async def _audited(platform: Platform, tenant: str, entity: str) -> int:
    runtime = platform.runtimes["registro"]
    audit = runtime.tables.audit_log
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        count = await uow.session.scalar(
            select(func.count()).select_from(audit).where(audit.c.entity == entity)
        )
    return int(count or 0)


async def test_many_deferred_writes_past_the_limit_commit_whole(
    registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    entity = f"lote-{uuid.uuid4().hex[:8]}"
    # 5,000 audit records of 9 parameters each: 45,000 in all.
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        for i in range(5000):
            uow.audit(action="probar", entity=entity, entity_id=str(i), new={"i": i})

    assert await _audited(registro, tenant, entity) == 5000


async def test_one_multi_row_insert_past_the_limit_is_split(
    registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    audit = runtime.tables.audit_log
    entity = f"filas-{uuid.uuid4().hex[:8]}"
    rows = [
        {
            "tenant_id": tenant,
            "actor": _ACTOR.sub,
            "action": "probar",
            "entity": entity,
            "entity_id": str(i),
            "new_values": {"i": i},
            "request_id": "lote",
        }
        for i in range(6000)
    ]
    # One statement of 6,000 rows x 7 columns = 42,000 parameters, plus one more write.
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        uow.defer(insert(audit).values(rows))
        uow.audit(action="probar", entity=entity, entity_id="ultimo")

    assert await _audited(registro, tenant, entity) == 6001


async def test_a_failed_batch_past_the_limit_leaves_nothing(
    registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    audit = runtime.tables.audit_log
    entity = f"fallido-{uuid.uuid4().hex[:8]}"
    async with runtime.unit_of_work(tenant, _ACTOR) as uow:
        for i in range(4000):
            uow.audit(action="probar", entity=entity, entity_id=str(i))
    before = await _audited(registro, tenant, entity)

    with pytest.raises(Exception, match="audit"):  # noqa: B017 - the database's own error
        async with runtime.unit_of_work(tenant, _ACTOR) as uow:
            for i in range(4000):
                uow.audit(action="probar", entity=entity, entity_id=f"b{i}")
            # The last group breaks a NOT NULL column: the earlier groups went out already.
            uow.defer(insert(audit).values(tenant_id=tenant, entity=entity))

    assert await _audited(registro, tenant, entity) == before == 4000


async def test_a_use_case_with_events_compiles_once_and_then_comes_from_the_cache(
    registro: Platform, new_tenant: Callable[..., Any]
) -> None:
    # A consumer's transaction (an audit entry and two events, as a handler writes them)
    # must not be compiled again on every message: SQLAlchemy caches no multi-row VALUES.
    tenant = await new_tenant()
    runtime = registro.runtimes["registro"]
    example = Path(__file__).parents[2] / "bus-contracts/examples/registro/asiento-anulado/v1"
    data = json.loads((example / "minimal.json").read_text(encoding="utf-8"))
    hits: list[Any] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        if "outbox" in statement:
            hits.append(context.cache_hit)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", note)
    try:
        for i in range(3):
            async with runtime.unit_of_work(tenant, _ACTOR) as uow:
                uow.audit(action="probar", entity="cache", entity_id=str(i), new={"i": i})
                uow.emit("registro.asiento.anulado.v1", {**data, "motivo": f"prueba {i}"})
                uow.emit("registro.asiento.anulado.v1", {**data, "motivo": f"otra {i}"})
    finally:
        event.remove(engine, "after_cursor_execute", note)

    assert len(hits) == 3
    assert hits[1:] == [CACHE_HIT, CACHE_HIT]
