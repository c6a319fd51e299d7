"""Requests left half-way are picked up again: by staff (``.../reintentar``) once their
attempt has stalled, and by the reconciler on start and every period, never by two
replicas at once. The registro runs alone here, so nothing answers its requests and
they stay pending until made to look old."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, func, select, update

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.registro.justificantes import domain as justificante
from services.registro.models import justificantes
from services.registro.reconciliacion import reanudar_justificantes
from services.registro.sellos_tiempo import models as sellos
from tests.integration.test_justificante import EMITIR, register, row_of
from tests.support.platforms import asgi_client, bearer, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SOLICITAR_SELLO = "sellado.sellotiempo.solicitar.v1"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


async def pending_asiento(
    client: httpx.AsyncClient, platform: Platform, tenant: str, token: str
) -> dict:
    """An asiento whose justificante and time-stamp were asked for and never answered."""
    asiento = await register(client, token)

    async def both_pending() -> bool:
        sello = await sello_of(platform, tenant, asiento["id"])
        row = await row_of(platform, tenant, asiento["id"])
        return sello is not None and row is not None

    await eventually(both_pending)
    return asiento


async def sello_of(platform: Platform, tenant: str, asiento_id: str) -> Any:
    async with tenant_transaction(platform.db, tenant) as session:
        return (
            await session.execute(
                select(sellos.sellos_tiempo).where(sellos.sellos_tiempo.c.asiento_id == asiento_id)
            )
        ).first()


async def age(platform: Platform, tenant: str, table: Table, asiento_id: str, at: datetime) -> None:
    """Makes a request look as if its attempt had been asked for at ``at``."""
    async with tenant_transaction(platform.db, tenant) as session:
        await session.execute(
            update(table).where(table.c.asiento_id == asiento_id).values(solicitado_en=at)
        )


async def commands(platform: Platform, tenant: str, name: str, solicitud: str) -> int:
    """How many commands ``name`` for ``solicitud`` the registro's outbox holds."""
    outbox = platform.runtimes["registro"].tables.outbox
    async with platform.db.engine.connect() as conn:
        found = await conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.routing_key == f"{tenant}.{name}",
                outbox.c.envelope["data"]["solicitud_id"].astext == solicitud,
            )
        )
        return int(found.scalar_one())


async def test_reintentar_takes_over_a_request_whose_attempt_stalled(
    platform, client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    staff = token(tenant, "registro")
    asiento = await pending_asiento(client, platform, tenant, staff)
    base = f"/api/v1/registro/asientos/{asiento['id']}"

    # Still within its lease: somebody is issuing it, asking again would duplicate it.
    busy = await client.post(f"{base}/justificante/reintentar", headers=bearer(staff))
    assert busy.status_code == 409, busy.text
    busy = await client.post(f"{base}/sello-tiempo/reintentar", headers=bearer(staff))
    assert busy.status_code == 409, busy.text

    # The worker died long ago: its request will never be answered.
    stalled_after = platform.settings.reconciler_stalled_after_seconds
    long_ago = datetime.now(UTC) - timedelta(seconds=stalled_after + 60)
    await age(platform, tenant, justificantes, asiento["id"], long_ago)
    await age(platform, tenant, sellos.sellos_tiempo, asiento["id"], long_ago)

    again = await client.post(f"{base}/justificante/reintentar", headers=bearer(staff))
    assert again.status_code == 202, again.text
    row = await row_of(platform, tenant, asiento["id"])
    assert (row.estado, row.intento) == ("pendiente", 2)
    assert str(row.solicitud_id) == justificante.solicitud_id(asiento["id"], 2)
    assert row.solicitado_en > long_ago
    assert await commands(platform, tenant, EMITIR, str(row.solicitud_id)) == 1

    again = await client.post(f"{base}/sello-tiempo/reintentar", headers=bearer(staff))
    assert again.status_code == 202, again.text
    assert again.json()["intento"] == 2
    sello = await sello_of(platform, tenant, asiento["id"])
    assert (sello.estado, sello.intento) == ("pendiente", 2)
    assert await commands(platform, tenant, SOLICITAR_SELLO, str(sello.solicitud_id)) == 1

    # The new attempt has a fresh lease: asking a third time right away is refused again.
    busy = await client.post(f"{base}/justificante/reintentar", headers=bearer(staff))
    assert busy.status_code == 409, busy.text


async def test_two_reconcilers_never_take_the_same_request(
    settings: Settings, platform, client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    asiento = await pending_asiento(client, platform, tenant, token(tenant, "registro"))
    # Older than anything else in the test database, so a pass at this cut-off sees it alone.
    cutoff = datetime(2000, 1, 1, tzinfo=UTC)
    await age(platform, tenant, justificantes, asiento["id"], cutoff - timedelta(days=1))

    async with running_platform(settings, ["registro"]) as replica:
        first = platform.runtimes["registro"]
        second = replica.runtimes["registro"]
        actor = Actor.system("prueba.reconciliador")
        async with first.unit_of_work(tenant, actor) as uow:
            assert await reanudar_justificantes(uow, cutoff) == 1
            # The first replica holds the row until it commits: the second skips it, unblocked.
            async with second.unit_of_work(tenant, actor) as other:
                taken = await asyncio.wait_for(reanudar_justificantes(other, cutoff), 10)
            assert taken == 0
        # Committed with a renewed lease: no longer stalled for anyone.
        stalled_after = timedelta(seconds=settings.reconciler_stalled_after_seconds)
        assert await second.reconciler.run_once(now=cutoff + stalled_after) == 0
        assert await first.reconciler.run_once(now=cutoff + stalled_after) == 0

    row = await row_of(platform, tenant, asiento["id"])
    assert (row.estado, row.intento) == ("pendiente", 2)
    assert (
        await commands(platform, tenant, EMITIR, justificante.solicitud_id(asiento["id"], 2)) == 1
    )
    assert (
        await commands(platform, tenant, EMITIR, justificante.solicitud_id(asiento["id"], 3)) == 0
    )


async def test_the_reconciler_runs_on_start_and_every_period(
    settings: Settings, new_tenant, token
) -> None:
    # A cut-off no row of other tests can reach, and a short period.
    quick = settings.model_copy(
        update={"reconciler_period_seconds": 0.2, "reconciler_stalled_after_seconds": 7200}
    )
    tenant = await new_tenant()
    async with running_platform(quick, ["registro"]) as platform:
        async with asgi_client(platform.apps["registro"]) as client:
            asiento = await pending_asiento(client, platform, tenant, token(tenant, "registro"))
        long_ago = datetime.now(UTC) - timedelta(hours=3)
        await age(platform, tenant, justificantes, asiento["id"], long_ago)
        await age(platform, tenant, sellos.sellos_tiempo, asiento["id"], long_ago)

        async def both_asked_again() -> bool:
            row = await row_of(platform, tenant, asiento["id"])
            sello = await sello_of(platform, tenant, asiento["id"])
            return bool(row.intento == 2 and sello.intento == 2)

        await eventually(both_asked_again, timeout=20)
        audit = platform.runtimes["registro"].tables.audit_log
        async with tenant_transaction(platform.db, tenant) as session:
            actors = set(
                (
                    await session.execute(
                        select(audit.c.actor).where(audit.c.action.like("reintentar-%"))
                    )
                ).scalars()
            )
        assert actors == {
            "sistema:registro.reconciliador.justificantes",
            "sistema:registro.reconciliador.sellos-tiempo",
        }
