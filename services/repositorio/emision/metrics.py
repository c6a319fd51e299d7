"""The repositorio's figure for operators: emisiones not yet issued, by stage.

An emisión waits first for its CSV (``pendiente``), then for its seal (``sellando``).
A count that grows, or an oldest one that ages, says which step of the issuing chain
is behind (the csv service, or the document workers that stamp and seal). Emisiones
are tenant rows under row-level security, so they are counted tenant by tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from services.common.db import tenant_transaction
from services.common.metrics import GaugeQuery
from services.common.runtime import ServiceRuntime
from services.common.tenants import list_tenants
from services.repositorio.emision.domain import EstadoEmision
from services.repositorio.emision.models import emisiones

__all__ = ["emision_gauges"]

_EN_CURSO = (EstadoEmision.PENDIENTE.value, EstadoEmision.SELLANDO.value)


def emision_gauges(runtime: ServiceRuntime) -> list[GaugeQuery]:
    """Emisiones in progress (count by stage, and the oldest one's age) over every tenant."""

    async def in_progress() -> list[tuple[str, int, datetime | None]]:
        async with runtime.db.engine.connect() as conn:
            tenants = await list_tenants(conn)
        out: list[tuple[str, int, datetime | None]] = []
        for tenant in tenants:
            async with tenant_transaction(runtime.db, tenant.ine_code) as session:
                rows = (
                    await session.execute(
                        select(emisiones.c.estado, func.count(), func.min(emisiones.c.creado_en))
                        .where(emisiones.c.estado.in_(_EN_CURSO))
                        .group_by(emisiones.c.estado)
                    )
                ).all()
            out.extend((row[0], row[1], row[2]) for row in rows)
        return out

    async def backlog() -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {(estado,): 0.0 for estado in _EN_CURSO}
        for estado, count, _ in await in_progress():
            counts[(estado,)] += count
        return counts

    async def oldest() -> dict[tuple[str, ...], float]:
        stamps = [stamp for _, _, stamp in await in_progress() if stamp is not None]
        return {(): (datetime.now(UTC) - min(stamps)).total_seconds() if stamps else 0.0}

    return [
        GaugeQuery(
            "consistorio_repositorio_emisiones_en_curso",
            "Emisiones not yet issued, by stage (pendiente: waiting for the CSV; sellando: "
            "stamped and waiting for the seal).",
            ("estado",),
            backlog,
        ),
        GaugeQuery(
            "consistorio_repositorio_emision_oldest_age_seconds",
            "Age of the oldest emisión still in progress (0 when none).",
            (),
            oldest,
        ),
    ]
