"""The registro's own figure for operators: asientos still waiting for their justificante.

Every asiento must get its receipt; a backlog that grows means the issuing chain
(repositorio, csv, sellado) is stuck. Justificantes are tenant rows under row-level
security, so they are counted tenant by tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from services.common.db import tenant_transaction
from services.common.metrics import GaugeQuery
from services.common.runtime import ServiceRuntime
from services.common.tenants import list_tenants
from services.registro.justificantes.domain import EstadoJustificante
from services.registro.justificantes.models import justificantes

__all__ = ["justificante_gauges"]


def justificante_gauges(runtime: ServiceRuntime) -> list[GaugeQuery]:
    """Pending justificantes (count and oldest age) over every tenant."""

    async def pending() -> list[tuple[int, datetime | None]]:
        async with runtime.db.engine.connect() as conn:
            tenants = await list_tenants(conn)
        out = []
        for tenant in tenants:
            async with tenant_transaction(runtime.db, tenant.ine_code) as session:
                row = (
                    await session.execute(
                        select(func.count(), func.min(justificantes.c.solicitado_en)).where(
                            justificantes.c.estado == EstadoJustificante.PENDIENTE
                        )
                    )
                ).one()
            out.append((row[0], row[1]))
        return out

    async def backlog() -> dict[tuple[str, ...], float]:
        return {(): float(sum(count for count, _ in await pending()))}

    async def oldest() -> dict[tuple[str, ...], float]:
        stamps = [stamp for _, stamp in await pending() if stamp is not None]
        age = (datetime.now(UTC) - min(stamps)).total_seconds() if stamps else 0.0
        return {(): age}

    return [
        GaugeQuery(
            "consistorio_registro_justificantes_pendientes",
            "Asientos whose justificante was asked for and not yet issued.",
            (),
            backlog,
        ),
        GaugeQuery(
            "consistorio_registro_justificante_pendiente_oldest_age_seconds",
            "Age of the oldest justificante still pending (0 when none).",
            (),
            oldest,
        ),
    ]
