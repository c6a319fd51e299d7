"""Use cases of the tramitador, one transaction each."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.envelope import ReceivedEvent
from services.common.errors import NotFound
from services.common.uow import UnitOfWork
from services.tramitador.expedientes import domain
from services.tramitador.expedientes.schemas import ExpedienteRead, ProcedimientoRead
from services.tramitador.models import expedientes, procedimientos

__all__ = [
    "EXPEDIENTE_INICIADO",
    "get_expediente",
    "list_expedientes",
    "list_procedimientos",
    "open_expediente_for_asiento",
]

EXPEDIENTE_INICIADO = "tramitador.expediente.iniciado.v1"
_log = logging.getLogger("consistorio.tramitador")


async def open_expediente_for_asiento(
    uow: UnitOfWork, event: ReceivedEvent
) -> ExpedienteRead | None:
    """Opens the expediente an asiento de entrada asks for, if its procedimiento is known."""
    asiento = event.data
    catalogo = set((await uow.session.execute(select(procedimientos.c.codigo))).scalars())
    if not domain.abre_expediente(
        tipo_asiento=asiento["tipo"], procedimiento=asiento.get("procedimiento"), catalogo=catalogo
    ):
        _log.info("asiento %s opens no expediente", asiento["numero"])
        return None
    fecha = datetime.now(UTC)
    anio = int(asiento["anio"])
    secuencia = await uow.next_number(domain.SERIE_EXPEDIENTES, anio)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "anio": anio,
        "secuencia": secuencia,
        "numero": domain.format_numero(anio, secuencia),
        "procedimiento": asiento["procedimiento"],
        "estado": domain.EstadoExpediente.INICIADO.value,
        "asiento_id": asiento["asiento_id"],
        "asiento_numero": asiento["numero"],
        "fecha_inicio": fecha,
        "interesados": asiento["interesados"],
    }
    uow.add(expedientes, row)
    expediente = ExpedienteRead.model_validate(row)
    snapshot = expediente.model_dump(mode="json")
    uow.audit(action="iniciar", entity="expediente", entity_id=expediente.id, new=snapshot)
    uow.emit(
        EXPEDIENTE_INICIADO,
        {
            "expediente_id": expediente.id,
            "numero": expediente.numero,
            "anio": expediente.anio,
            "secuencia": expediente.secuencia,
            "procedimiento": expediente.procedimiento,
            "estado": expediente.estado.value,
            "asiento_id": expediente.asiento_id,
            "asiento_numero": expediente.asiento_numero,
            "fecha_inicio": snapshot["fecha_inicio"],
            "interesados": expediente.interesados,
        },
        subject=expediente.numero,
    )
    return expediente


async def get_expediente(
    session: AsyncSession, *, tenant_id: str, expediente_id: str
) -> ExpedienteRead:
    """One expediente of the tenant; another tenant's is a 404."""
    try:
        uuid.UUID(expediente_id)
    except ValueError:
        raise NotFound(f"No existe el expediente {expediente_id}.") from None
    row = (
        await session.execute(
            select(expedientes).where(
                expedientes.c.tenant_id == tenant_id, expedientes.c.id == expediente_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No existe el expediente {expediente_id}.")
    return ExpedienteRead.model_validate(row._mapping)


async def list_expedientes(
    session: AsyncSession, *, tenant_id: str, asiento_id: str | None, limit: int
) -> list[ExpedienteRead]:
    """The tenant's expedientes, newest first, optionally those of one asiento."""
    query = select(expedientes).where(expedientes.c.tenant_id == tenant_id)
    if asiento_id is not None:
        try:
            uuid.UUID(asiento_id)
        except ValueError:
            return []
        query = query.where(expedientes.c.asiento_id == asiento_id)
    rows = await session.execute(query.order_by(expedientes.c.fecha_inicio.desc()).limit(limit))
    return [ExpedienteRead.model_validate(r._mapping) for r in rows]


async def list_procedimientos(session: AsyncSession) -> list[ProcedimientoRead]:
    """The catalogue of procedimientos."""
    rows = await session.execute(select(procedimientos).order_by(procedimientos.c.codigo))
    return [ProcedimientoRead.model_validate(r._mapping) for r in rows]
