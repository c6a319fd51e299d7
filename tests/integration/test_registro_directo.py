"""The hot path of registering (raw asyncpg, ``registrar_asiento_directo``) writes and
refuses exactly what the ORM path (``registrar_asiento``) does: the same asiento row,
audit entry and event for the same asiento, the same errors, the same numbering."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.errors import Unprocessable
from services.common.idempotency import Created, run_idempotent
from services.common.uow import Actor
from services.registro.asientos import service
from services.registro.asientos.models import asientos
from services.registro.asientos.schemas import AsientoCreate
from services.registro.metadata import kernel
from services.registro.oficinas import service as oficinas
from tests.integration.test_registro_asiento_completo import abrir_oficinas
from tests.support import factories

pytestmark = pytest.mark.integration

_OFICINA = factories.CAMPOS_SICRES["oficina"]
_NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


def _completo() -> AsientoCreate:
    return AsientoCreate.model_validate(
        factories.asiento(
            interesados=[factories.interesado_completo(), factories.interesado()],
            **factories.CAMPOS_SICRES,
        )
    )


async def _por_orm(platform: Platform, tenant: str, data: AsientoCreate) -> Any:
    runtime = platform.runtimes["registro"]
    async with runtime.unit_of_work(tenant, Actor("ana", client_ip="10.0.0.1")) as uow:
        return await service.registrar_asiento(uow, data=data, now=_NOW)


async def _directo(platform: Platform, tenant: str, data: AsientoCreate) -> Any:
    runtime = platform.runtimes["registro"]
    actor = Actor("ana", client_ip="10.0.0.1")
    async with runtime.lean_unit_of_work(tenant, actor, first=oficinas.BLOQUEO_NUMERACION) as uow:
        return await service.registrar_asiento_directo(uow, data=data, now=_NOW)


async def _escrito(platform: Platform, tenant: str) -> dict[str, Any]:
    """What a registration left in the tenant's tables, without what differs by nature
    (ids, tenant, the moment of writing)."""
    async with tenant_transaction(platform.runtimes["registro"].db, tenant) as session:
        fila = dict((await session.execute(select(asientos))).one()._mapping)
        log, outbox = kernel.audit_log, kernel.outbox
        auditoria = dict(
            (
                await session.execute(
                    select(log).where(log.c.entity == "asiento", log.c.action == "registrar")
                )
            )
            .one()
            ._mapping
        )
        evento = (
            await session.execute(
                # The outbox is the relay's, across tenants: no row-level security.
                select(outbox).where(
                    outbox.c.tenant_id == tenant,
                    outbox.c.routing_key.contains("asiento.registrado"),
                )
            )
        ).one()
    for quitar in ("id", "tenant_id", "created_at"):
        fila.pop(quitar)
    nuevo = dict(auditoria["new_values"])
    nuevo.pop("id")
    envelope = dict(evento.envelope)
    datos = dict(envelope["data"])
    datos.pop("asiento_id")
    return {
        "asiento": fila,
        "auditoria": {
            **{k: auditoria[k] for k in ("actor", "action", "entity", "client_ip")},
            "new_values": nuevo,
        },
        "evento": {
            "routing_key": evento.routing_key.replace(tenant, "T"),
            "data": datos,
            **{k: envelope[k] for k in ("type", "subject", "dataschema", "specversion")},
        },
    }


async def test_the_hot_path_writes_what_the_orm_path_writes(
    registro_platform: Platform, registro_client: httpx.AsyncClient, new_tenant: Any, token: Any
) -> None:
    orm, directo = await new_tenant(), await new_tenant()
    for tenant in (orm, directo):
        await abrir_oficinas(registro_client, tenant, token, _OFICINA)

    data = _completo()
    por_orm = await _por_orm(registro_platform, orm, data)
    por_directo = await _directo(registro_platform, directo, data)

    assert por_directo.model_dump(exclude={"id"}) == por_orm.model_dump(exclude={"id"})
    assert por_directo.numero == f"E/2026/{1:06d}"
    assert await _escrito(registro_platform, directo) == await _escrito(registro_platform, orm)


async def test_the_hot_path_refuses_what_the_orm_path_refuses(
    registro_platform: Platform, new_tenant: Any
) -> None:
    tenant = await new_tenant()
    # An oficina the entity does not have.
    data = AsientoCreate.model_validate(factories.asiento(oficina="O00000001"))

    with pytest.raises(Unprocessable) as orm:
        await _por_orm(registro_platform, tenant, data)
    with pytest.raises(Unprocessable) as directo:
        await _directo(registro_platform, tenant, data)

    assert directo.value.detail == orm.value.detail
    assert directo.value.errors == orm.value.errors
    async with tenant_transaction(registro_platform.runtimes["registro"].db, tenant) as session:
        outbox = kernel.outbox
        assert (
            await session.execute(select(outbox).where(outbox.c.tenant_id == tenant))
        ).all() == []


async def test_both_paths_share_one_gapless_series(
    registro_platform: Platform, new_tenant: Any
) -> None:
    tenant = await new_tenant()
    data = AsientoCreate.model_validate(factories.asiento())

    registrados = await asyncio.gather(
        *((_directo if i % 2 else _por_orm)(registro_platform, tenant, data) for i in range(30))
    )

    assert sorted(a.secuencia for a in registrados) == list(range(1, 31))


async def _idempotente(
    platform: Platform, tenant: str, data: AsientoCreate, key: str, *, lean: bool
) -> Any:
    """A registration with an Idempotency-Key on either path, as the route runs it."""
    runtime = platform.runtimes["registro"]
    actor = Actor("ana", client_ip="10.0.0.1")

    if lean:
        async with runtime.lean_unit_of_work(tenant, actor) as directo:

            async def create_directo() -> Created:
                await directo.transaction.execute_constant(oficinas.BLOQUEO_NUMERACION)
                asiento = await service.registrar_asiento_directo(directo, data=data, now=_NOW)
                return Created(201, asiento.model_dump(mode="json"), {"Location": asiento.id})

            return await run_idempotent(
                directo, key=key, operation="registrar-asiento", payload=data, create=create_directo
            )
    async with runtime.unit_of_work(tenant, actor) as uow:

        async def create() -> Created:
            asiento = await service.registrar_asiento(uow, data=data, now=_NOW)
            return Created(201, asiento.model_dump(mode="json"), {"Location": asiento.id})

        return await run_idempotent(
            uow, key=key, operation="registrar-asiento", payload=data, create=create
        )


async def test_an_idempotency_key_is_kept_and_replayed_alike_on_both_paths(
    registro_platform: Platform, new_tenant: Any
) -> None:
    tenant = await new_tenant()
    data = AsientoCreate.model_validate(factories.asiento())
    first = {
        path: await _idempotente(registro_platform, tenant, data, f"clave-{path}", lean=lean)
        for path, lean in (("orm", False), ("directo", True))
    }

    async with tenant_transaction(registro_platform.runtimes["registro"].db, tenant) as session:
        keys = kernel.idempotency_keys
        stored = {
            row.key: row
            for row in (await session.execute(select(keys).where(keys.c.tenant_id == tenant)))
        }
    for path, answer in first.items():
        row = stored[f"clave-{path}"]
        assert answer.status_code == row.status_code == 201
        assert json.loads(answer.body) == row.response_body
        assert row.response_headers == {"Location": row.response_body["id"]}
        assert row.request_hash == stored["clave-orm"].request_hash
    # Each path replays what the other stored, and refuses the key for another body.
    for path, lean in (("orm", True), ("directo", False)):
        again = await _idempotente(registro_platform, tenant, data, f"clave-{path}", lean=lean)
        assert again.headers["idempotent-replayed"] == "true"
        assert json.loads(again.body) == json.loads(first[path].body)
        otro = data.model_copy(update={"resumen": "otra cosa"})
        with pytest.raises(Unprocessable, match="Idempotency-Key"):
            await _idempotente(registro_platform, tenant, otro, f"clave-{path}", lean=lean)
    async with tenant_transaction(registro_platform.runtimes["registro"].db, tenant) as session:
        assert len((await session.execute(select(asientos.c.id))).all()) == 2


def test_only_an_asiento_without_anexos_nor_correction_takes_the_hot_path() -> None:
    sencillo = AsientoCreate.model_validate(factories.asiento())
    corrige = AsientoCreate.model_validate(
        factories.asiento(corrige="5b1f4f4e-0000-4000-8000-000000000001")
    )

    assert service.admite_registro_directo(sencillo)
    assert not service.admite_registro_directo(corrige)
