"""The vencimiento scheduler on the real PostgreSQL: two schedulers at once expire, audit and
announce each overdue liquidación exactly once, on the council's local day."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.bootstrap import Platform
from services.common.db import asyncpg_url
from services.common.tenants import Tenant, add_tenant
from services.pagos.vencimientos import Vencedor
from tests.support.pagos import Entidad, configurar, liquidacion

pytestmark = pytest.mark.integration

VENCIDA = "pagos.liquidacion.vencida.v1"


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(database_url))
    yield engine
    await engine.dispose()


async def _vencer_el(owner: AsyncEngine, ids: list[str], dia: date) -> None:
    """Moves the vencimiento of issued liquidaciones into the past (the API refuses it)."""
    async with owner.begin() as conn:
        await conn.execute(
            text("UPDATE pagos.liquidaciones SET vencimiento = :d WHERE id = ANY(:ids)"),
            {"d": dia, "ids": ids},
        )


async def _estados(owner: AsyncEngine, ids: list[str]) -> dict[str, str]:
    async with owner.connect() as conn:
        filas = await conn.execute(
            text("SELECT id::text, estado FROM pagos.liquidaciones WHERE id = ANY(:ids)"),
            {"ids": ids},
        )
        return dict(filas.all())


async def _veces(owner: AsyncEngine, ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """How many 'vencer' audit entries and vencida events each liquidación has."""
    async with owner.connect() as conn:
        auditorias = dict(
            (
                await conn.execute(
                    text(
                        "SELECT entity_id, count(*) FROM pagos.audit_log WHERE action = 'vencer' "
                        "AND entity_id = ANY(:ids) GROUP BY entity_id"
                    ),
                    {"ids": ids},
                )
            ).all()
        )
        eventos = dict(
            (
                await conn.execute(
                    text(
                        "SELECT envelope->>'subject', count(*) FROM pagos.outbox "
                        "WHERE routing_key LIKE :rk AND envelope->>'subject' = ANY(:ids) "
                        "GROUP BY 1"
                    ),
                    {"rk": f"%.{VENCIDA}", "ids": ids},
                )
            ).all()
        )
    return auditorias, eventos


async def test_two_schedulers_expire_each_overdue_liquidacion_once(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad, owner: AsyncEngine
) -> None:
    emitidas = [await liquidacion(client, entidad, importe=f"{10 + i}.50") for i in range(24)]
    ids = [d["id"] for d in emitidas]
    otra = await liquidacion(client, entidad)  # not overdue: stays pendiente
    await _vencer_el(owner, ids, date(2026, 1, 15))

    runtime = platform.runtimes["pagos"]
    # Small batches, so the two replicas meet on the same rows many times over.
    replicas = [Vencedor(runtime, lote=3) for _ in range(2)]
    hechas = await asyncio.gather(*(r.una_pasada() for r in replicas for _ in range(2)))
    assert sum(hechas) >= len(ids)

    estados = await _estados(owner, [*ids, otra["id"]])
    assert {estados[i] for i in ids} == {"vencida"}
    assert estados[otra["id"]] == "pendiente"
    auditorias, eventos = await _veces(owner, ids)
    assert auditorias == dict.fromkeys(ids, 1)
    assert eventos == dict.fromkeys(ids, 1)

    # Nothing left: another pass, or the manual route, expires nothing more.
    assert await replicas[0].vencer_entidad(entidad.tenant) == 0
    a_mano = await client.post("/api/v1/pagos/vencimientos", headers=entidad.staff)
    assert a_mano.status_code == 200 and a_mano.json() == {"vencidas": 0}
    leida = await client.get(f"/api/v1/pagos/liquidaciones/{ids[0]}", headers=entidad.staff)
    assert leida.json()["estado"] == "vencida"


async def test_the_event_carries_the_liquidacion(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad, owner: AsyncEngine
) -> None:
    datos = await liquidacion(client, entidad, importe="42.10")
    await _vencer_el(owner, [datos["id"]], date(2026, 3, 1))
    a_mano = await client.post("/api/v1/pagos/vencimientos", headers=entidad.staff)
    assert a_mano.json() == {"vencidas": 1}
    async with owner.connect() as conn:
        envelope: Any = await conn.scalar(
            text(
                "SELECT envelope FROM pagos.outbox WHERE routing_key = :rk "
                "AND envelope->>'subject' = :id"
            ),
            {"rk": f"{entidad.tenant}.{VENCIDA}", "id": datos["id"]},
        )
    assert envelope["data"] == {
        "liquidacion_id": datos["id"],
        "expediente_id": None,
        "referencia": datos["referencia"],
        "importe": "42.10",
        "vencimiento": "2026-03-01",
    }


def _entidad_en(provincia: str, database_url: str) -> Callable[[], Any]:
    """A new_tenant stand-in that makes a council of a given province (its time zone)."""

    async def crear() -> str:
        codigo = f"{provincia}{random.randrange(1000):03d}"
        engine = create_async_engine(asyncpg_url(database_url))
        try:
            async with engine.begin() as conn:
                await add_tenant(conn, Tenant(codigo, f"Ayuntamiento {codigo}", "L01000000", True))
        finally:
            await engine.dispose()
        return codigo

    return crear


async def test_each_council_expires_on_its_own_local_day(
    client: httpx.AsyncClient,
    platform: Platform,
    owner: AsyncEngine,
    database_url: str,
    token: Callable[..., str],
) -> None:
    """Vencimiento 15 January 2026 (winter: Madrid UTC+1, Canarias UTC+0). At 23:30 UTC it
    is already the 16th in Madrid and still the 15th in Las Palmas; an hour later, both."""
    peninsula = await configurar(client, _entidad_en("28", database_url), token)
    canarias = await configurar(client, _entidad_en("35", database_url), token)
    de_peninsula = (await liquidacion(client, peninsula))["id"]
    de_canarias = (await liquidacion(client, canarias))["id"]
    await _vencer_el(owner, [de_peninsula, de_canarias], date(2026, 1, 15))
    runtime = platform.runtimes["pagos"]

    antes = Vencedor(runtime, reloj=lambda: datetime(2026, 1, 15, 22, 59, tzinfo=UTC))
    await antes.una_pasada()
    assert set((await _estados(owner, [de_peninsula, de_canarias])).values()) == {"pendiente"}

    medianoche_peninsular = Vencedor(
        runtime, reloj=lambda: datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
    )
    await medianoche_peninsular.una_pasada()
    estados = await _estados(owner, [de_peninsula, de_canarias])
    assert estados == {de_peninsula: "vencida", de_canarias: "pendiente"}

    medianoche_canaria = Vencedor(runtime, reloj=lambda: datetime(2026, 1, 16, 0, 30, tzinfo=UTC))
    await medianoche_canaria.una_pasada()
    estados = await _estados(owner, [de_peninsula, de_canarias])
    assert estados == {de_peninsula: "vencida", de_canarias: "vencida"}
