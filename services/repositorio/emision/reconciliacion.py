"""The repositorio's stalled emisiones, picked up again by the kernel's reconciler.

An emisión waits for the csv service (``pendiente``) or for the sellado
(``sellando``). One that has waited since before the cut-off goes back to
``pendiente`` and asks for its CSV again with the same request id: the csv
service answers a repeated request with the code it already reserved, and the
saga goes on from there (stamping again and asking for the seal again). A late
seal for the earlier attempt finds the emisión no longer ``sellando`` and is
skipped; if it comes once the new attempt is sealing, it is as good as the new
one (the same document with the same CSV) and the other answer is skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from services.common.reconciler import StalledScanner
from services.common.uow import UnitOfWork
from services.repositorio.emision.domain import EstadoEmision
from services.repositorio.emision.models import emisiones
from services.repositorio.emision.service import RESERVAR_CODIGO, SOLICITANTE

__all__ = ["ESCANERES", "reanudar_emisiones"]

# Emisiones re-driven per tenant and pass: a large backlog drains over several passes.
LOTE = 50
_EN_CURSO = (EstadoEmision.PENDIENTE.value, EstadoEmision.SELLANDO.value)


async def reanudar_emisiones(uow: UnitOfWork, cutoff: datetime) -> int:
    """Asks again for the CSV of the tenant's emisiones stalled since before ``cutoff``.

    Rows are locked with SKIP LOCKED and their ``actualizado_en`` renewed in the same
    transaction, so another replica's pass neither waits for them nor takes them.
    """
    rows = (
        await uow.session.execute(
            select(emisiones.c.id, emisiones.c.documento_id, emisiones.c.estado)
            .where(emisiones.c.estado.in_(_EN_CURSO), emisiones.c.actualizado_en < cutoff)
            .order_by(emisiones.c.actualizado_en)
            .limit(LOTE)
            .with_for_update(skip_locked=True)
        )
    ).all()
    ahora = datetime.now(UTC)
    for row in rows:
        uow.defer(
            update(emisiones)
            .where(emisiones.c.id == row.id)
            .values(estado=EstadoEmision.PENDIENTE.value, actualizado_en=ahora)
        )
        uow.audit(
            action="reanudar",
            entity="emision",
            entity_id=str(row.id),
            old={"estado": row.estado},
            new={"estado": EstadoEmision.PENDIENTE.value},
        )
        uow.emit(
            RESERVAR_CODIGO,
            {
                "solicitud_id": str(row.id),
                "solicitante": SOLICITANTE,
                "documento_id": str(row.documento_id),
            },
            subject=str(row.documento_id),
        )
    return len(rows)


ESCANERES = (StalledScanner("emisiones", reanudar_emisiones),)
