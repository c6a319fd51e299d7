"""Use cases of the registro, one transaction each."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import NotFound
from services.common.uow import UnitOfWork
from services.registro import domain
from services.registro.models import asientos
from services.registro.schemas import AsientoCreate, AsientoRead

__all__ = ["ASIENTO_REGISTRADO", "get_asiento", "list_asientos", "register_asiento"]

ASIENTO_REGISTRADO = "registro.asiento.registrado.v1"


async def register_asiento(
    uow: UnitOfWork, *, data: AsientoCreate, now: datetime | None = None
) -> AsientoRead:
    """Registers an asiento: takes its gapless number, stores it, audits it, emits the event."""
    fecha = now or datetime.now(UTC)
    anio = domain.anio_registral(fecha, uow.tenant_id)
    secuencia = await uow.next_number(domain.serie_de(data.tipo), anio)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "tipo": data.tipo.value,
        "anio": anio,
        "secuencia": secuencia,
        "numero": domain.format_numero(data.tipo, anio, secuencia),
        "fecha_registro": fecha,
        "resumen": data.resumen,
        "unidad_destino": data.unidad_destino,
        "procedimiento": data.procedimiento,
        "interesados": [i.model_dump(mode="json") for i in data.interesados],
        "registrado_por": uow.actor.sub,
    }
    uow.add(asientos, row)
    asiento = AsientoRead.model_validate(row)
    snapshot = asiento.model_dump(mode="json")
    uow.audit(action="registrar", entity="asiento", entity_id=asiento.id, new=snapshot)
    uow.emit(
        ASIENTO_REGISTRADO,
        {
            "asiento_id": asiento.id,
            "numero": asiento.numero,
            "tipo": asiento.tipo.value,
            "anio": asiento.anio,
            "secuencia": asiento.secuencia,
            "fecha_registro": snapshot["fecha_registro"],
            "resumen": asiento.resumen,
            "unidad_destino": asiento.unidad_destino,
            "procedimiento": asiento.procedimiento,
            "interesados": snapshot["interesados"],
        },
        subject=asiento.numero,
    )
    return asiento


async def get_asiento(session: AsyncSession, *, tenant_id: str, asiento_id: str) -> AsientoRead:
    """One asiento of the tenant; another tenant's (or a malformed id) is a 404."""
    try:
        uuid.UUID(asiento_id)
    except ValueError:
        raise NotFound(f"No existe el asiento {asiento_id}.") from None
    row = (
        await session.execute(
            select(asientos).where(asientos.c.tenant_id == tenant_id, asientos.c.id == asiento_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"No existe el asiento {asiento_id}.")
    return AsientoRead.model_validate(row._mapping)


async def list_asientos(
    session: AsyncSession,
    *,
    tenant_id: str,
    tipo: domain.TipoAsiento | None,
    page: int,
    size: int,
) -> tuple[list[AsientoRead], int]:
    """A page of the tenant's asientos, newest first, and how many there are in all."""
    where = [asientos.c.tenant_id == tenant_id]
    if tipo is not None:
        where.append(asientos.c.tipo == tipo.value)
    total = (
        await session.execute(select(func.count()).select_from(asientos).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(asientos)
        .where(*where)
        .order_by(asientos.c.fecha_registro.desc(), asientos.c.id)
        .limit(size)
        .offset((page - 1) * size)
    )
    return [AsientoRead.model_validate(r._mapping) for r in rows], int(total)
