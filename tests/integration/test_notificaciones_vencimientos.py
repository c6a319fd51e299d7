"""The expiry scheduler with two replicas on real PostgreSQL: every due notification
expires exactly once (one state change, one audit entry, one event), none early;
and the tables stay under row-level security for the app role."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.notificaciones import service
from services.notificaciones.clock import ControlledClock
from services.notificaciones.models import kernel, notificaciones
from services.notificaciones.schemas import DocumentoNotificado, NotificacionCreate
from services.notificaciones.vencimientos import Vencedor
from tests.support.factories import nif
from tests.support.platforms import running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

INICIO = datetime(2026, 3, 20, 9, 0, 0, tzinfo=UTC)  # 10:00 CET
VENCE = datetime(2026, 3, 30, 8, 0, 0, tzinfo=UTC)  # 10:00 CEST: the spring change between
EXPIRADA = "notificaciones.notificacion.expirada.v1"


@pytest.fixture
async def replicas(settings: Settings) -> AsyncIterator[tuple[Platform, Platform]]:
    """Two notificaciones replicas: separate processes' worth of pools and relays."""
    async with (
        running_platform(settings, ["notificaciones"]) as uno,
        running_platform(settings, ["notificaciones"]) as dos,
    ):
        yield uno, dos


async def sembrar(platform: Platform, tenant: str, cuantas: int, *, puesta: datetime) -> None:
    """``cuantas`` electronic notifications put at disposal at ``puesta`` (use case direct)."""
    runtime = platform.runtimes["notificaciones"]
    documento = DocumentoNotificado(documento_id=str(uuid.uuid4()), version=1, nombre="r.pdf")
    for inicio in range(0, cuantas, 50):
        datos = NotificacionCreate.model_validate(
            {
                "documento_id": documento.documento_id,
                "concepto": "Resolución",
                "interesados": [
                    {
                        "tipo_identificador": "NIF",
                        "identificador": nif(),
                        "nombre": "P",
                        "eligio_electronico": True,
                    }
                    for _ in range(min(50, cuantas - inicio))
                ],
            }
        )
        async with runtime.unit_of_work(tenant, Actor(sub="funcionaria")) as uow:
            await service.crear_notificaciones(
                uow, datos=datos, documento=documento, emisor="Ayuntamiento", ahora=puesta
            )


async def expiradas(platform: Platform, tenants: list[str]) -> Counter[str]:
    outbox = kernel.outbox
    async with platform.runtimes["notificaciones"].db.engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.envelope).where(
                outbox.c.tenant_id.in_(tenants),
                outbox.c.routing_key.like(f"%.{EXPIRADA}"),
            )
        )
        return Counter(r.envelope["data"]["notificacion_id"] for r in rows)


async def test_two_schedulers_expire_each_notification_exactly_once(
    replicas: tuple[Platform, Platform], new_tenant: Callable[..., Any]
) -> None:
    uno, dos = replicas
    tenants = [await new_tenant(), await new_tenant()]
    for tenant in tenants:
        await sembrar(uno, tenant, 150, puesta=INICIO)
    # One more, put at disposal a second later: due a second later.
    await sembrar(uno, tenants[0], 1, puesta=INICIO + timedelta(seconds=1))
    clock = ControlledClock(VENCE - timedelta(seconds=1))
    # Small batches so that the two replicas' passes interleave and compete for rows.
    a = Vencedor(uno.runtimes["notificaciones"], clock, lote=17)
    b = Vencedor(dos.runtimes["notificaciones"], clock, lote=17)

    await asyncio.gather(a.una_pasada(), b.una_pasada())
    assert await expiradas(uno, tenants) == Counter()

    clock.set(VENCE)
    hechas = await asyncio.gather(a.una_pasada(), b.una_pasada(), a.una_pasada())
    # Other tests' notifications may share the database: count ours by their events.
    assert sum(hechas) >= 300
    eventos = await expiradas(uno, tenants)
    assert len(eventos) == 300
    assert set(eventos.values()) == {1}

    clock.set(VENCE + timedelta(seconds=1))
    assert sum(await asyncio.gather(a.una_pasada(), b.una_pasada())) >= 1
    assert len(await expiradas(uno, tenants)) == 301

    db = uno.runtimes["notificaciones"].db
    for tenant in tenants:
        async with tenant_transaction(db, tenant) as session:
            estados: dict[str, int] = dict(
                (
                    await session.execute(
                        select(notificaciones.c.estado, func.count()).group_by(
                            notificaciones.c.estado
                        )
                    )
                ).all()
            )
            auditadas = (
                await session.execute(
                    select(func.count())
                    .select_from(kernel.audit_log)
                    .where(kernel.audit_log.c.action == "notificacion-vencer")
                )
            ).scalar_one()
            legales = (
                await session.execute(select(func.min(notificaciones.c.fecha_legal)))
            ).scalar_one()
        expected = 151 if tenant == tenants[0] else 150
        assert estados == {"expirada": expected}
        assert auditadas == expected
        assert legales.isoformat() == "2026-03-30"


async def test_the_background_loop_expires_what_is_due(
    replicas: tuple[Platform, Platform], new_tenant: Callable[..., Any]
) -> None:
    uno, _ = replicas
    tenant = await new_tenant()
    await sembrar(uno, tenant, 3, puesta=INICIO)
    clock = ControlledClock(VENCE)
    vencedor = Vencedor(uno.runtimes["notificaciones"], clock, intervalo_segundos=0.05)
    vencedor.start()
    try:

        async def todas() -> bool:
            return len(await expiradas(uno, [tenant])) == 3

        await eventually(todas)
    finally:
        await vencedor.stop()


async def test_the_app_role_sees_no_notification_without_its_tenant(
    replicas: tuple[Platform, Platform], new_tenant: Callable[..., Any]
) -> None:
    uno, _ = replicas
    tenant = await new_tenant()
    await sembrar(uno, tenant, 2, puesta=INICIO)
    db = uno.runtimes["notificaciones"].db
    async with db.engine.connect() as conn:
        unbound = (
            await conn.execute(text("SELECT count(*) FROM notificaciones.notificaciones"))
        ).scalar_one()
    assert unbound == 0
    otra = await new_tenant()
    async with tenant_transaction(db, otra) as session:
        assert (
            await session.execute(select(func.count()).select_from(notificaciones))
        ).scalar_one() == 0
    async with tenant_transaction(db, tenant) as session:
        assert (
            await session.execute(select(func.count()).select_from(notificaciones))
        ).scalar_one() == 2
