"""Use cases of the worklist: read one's trámites, set a unit's members."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    delete,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import FieldError, Unprocessable
from services.common.uow import UnitOfWork
from services.tramitador.bandeja import domain
from services.tramitador.bandeja.models import miembros_unidad
from services.tramitador.bandeja.schemas import Bandeja, ElementoBandeja, RecuentoBandeja
from services.tramitador.expedientes.domain import codificar_cursor, decodificar_cursor
from services.tramitador.expedientes.models import expedientes, tramites

__all__ = ["fijar_miembros", "leer_bandeja"]

# Written as a literal, not a parameter, so the planner matches the worklist index.
_ORDEN: ColumnElement[date] = func.coalesce(
    tramites.c.vencimiento, literal_column(f"DATE '{domain.SIN_VENCIMIENTO.isoformat()}'")
)


async def fijar_miembros(uow: UnitOfWork, *, unidad: str, usuarios: list[str]) -> list[str]:
    """Replaces the users of a unit (audited)."""
    nuevos = sorted(set(usuarios))
    await uow.session.execute(
        delete(miembros_unidad).where(
            miembros_unidad.c.tenant_id == uow.tenant_id, miembros_unidad.c.unidad == unidad
        )
    )
    for usuario in nuevos:
        uow.add(miembros_unidad, {"tenant_id": uow.tenant_id, "unidad": unidad, "usuario": usuario})
    uow.audit(action="fijar-miembros", entity="unidad", entity_id=unidad, new={"usuarios": nuevos})
    return nuevos


async def _asignados(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    unidades = (
        (
            await session.execute(
                select(miembros_unidad.c.unidad).where(
                    miembros_unidad.c.tenant_id == principal.tenant,
                    miembros_unidad.c.usuario == principal.sub,
                )
            )
        )
        .scalars()
        .all()
    )
    condiciones: list[ColumnElement[bool]] = [tramites.c.persona == principal.sub]
    if principal.roles:
        condiciones.append(tramites.c.rol.in_(sorted(principal.roles)))
    if unidades:
        condiciones.append(tramites.c.unidad.in_(unidades))
    return or_(false(), *condiciones)


async def leer_bandeja(
    session: AsyncSession,
    *,
    principal: Principal,
    filtros: dict[str, Any],
    cursor: str | None,
    limit: int,
    contar: bool,
    hoy: date,
) -> Bandeja:
    """The caller's open trámites (their own, their roles', their units'), nearest due
    date first, filtered by procedure, phase and due date."""
    c = tramites.c
    where = [
        c.tenant_id == principal.tenant,
        c.estado == "abierto",
        await _asignados(session, principal),
    ]
    if filtros.get("procedimiento"):
        where.append(c.procedimiento == filtros["procedimiento"])
    if filtros.get("fase"):
        where.append(c.fase == filtros["fase"])
    if filtros.get("vence_antes"):
        where.append(c.vencimiento <= filtros["vence_antes"])
    query = (
        select(
            c.id.label("tramite_id"),
            c.expediente_id,
            expedientes.c.numero,
            c.procedimiento,
            c.fase,
            c.codigo,
            c.nombre,
            c.unidad,
            c.rol,
            c.persona,
            c.vencimiento,
            expedientes.c.asunto,
        )
        .join(expedientes, expedientes.c.id == c.expediente_id)
        .where(*where)
    )
    if cursor:
        try:
            fecha, ultimo = decodificar_cursor(cursor, 2)
            clave = date.fromisoformat(fecha)
            uuid.UUID(ultimo)
        except ValueError as exc:
            raise Unprocessable(str(exc), errors=[FieldError("cursor", str(exc))]) from None
        # A row comparison: PostgreSQL walks the worklist index from the cursor on.
        query = query.where(
            tuple_(_ORDEN, c.id) > tuple_(literal(clave), literal(ultimo, type_=c.id.type))
        )
    rows = (await session.execute(query.order_by(_ORDEN, c.id).limit(limit + 1))).all()
    items = [ElementoBandeja.model_validate(r._mapping) for r in rows[:limit]]
    siguiente = None
    if len(rows) > limit:
        last = items[-1]
        siguiente = codificar_cursor(
            domain.clave_orden(last.vencimiento).isoformat(), last.tramite_id
        )
    bandeja = Bandeja(items=items, next_cursor=siguiente)
    # Counting covers every trámite of the caller: on the first page only.
    if contar and not cursor:
        vencido = func.count().filter(c.vencimiento < hoy)
        recuento = (
            await session.execute(
                select(c.procedimiento, func.count(), vencido)
                .where(*where)
                .group_by(c.procedimiento)
                .order_by(c.procedimiento)
            )
        ).all()
        bandeja.por_procedimiento = [
            RecuentoBandeja(procedimiento=p, total=t, vencidos=v) for p, t, v in recuento
        ]
        bandeja.total = sum(r.total for r in bandeja.por_procedimiento)
        bandeja.vencidos = sum(r.vencidos for r in bandeja.por_procedimiento)
    return bandeja
