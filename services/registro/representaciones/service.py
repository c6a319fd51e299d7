"""Use cases of representaciones, one transaction each (the rules: see __init__)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Conflict, NotFound
from services.common.timezones import tenant_timezone
from services.common.uow import UnitOfWork
from services.registro.representaciones.models import representaciones
from services.registro.representaciones.schemas import (
    RepresentacionCreate,
    RepresentacionRead,
    RevocacionCreate,
)

__all__ = [
    "consultar_representacion",
    "listar_representaciones",
    "registrar_representacion",
    "representados_por",
    "revocar_representacion",
]


def _read(row: Any) -> RepresentacionRead:
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    return RepresentacionRead.model_validate(
        {
            **data,
            "poderdante": {
                "tipo_identificador": data["poderdante_tipo"],
                "identificador": data["poderdante"],
                "nombre": data["poderdante_nombre"],
            },
            "representante": {
                "tipo_identificador": data["representante_tipo"],
                "identificador": data["representante"],
                "nombre": data["representante_nombre"],
            },
        }
    )


def _hoy(tenant_id: str) -> date:
    """Today in the entity's own time zone: representations run by local dates."""
    return datetime.now(tenant_timezone(tenant_id)).date()


async def registrar_representacion(
    uow: UnitOfWork, *, data: RepresentacionCreate
) -> RepresentacionRead:
    """Records that the poderdante is represented by the representante; audited."""
    if data.poderdante.identificador == data.representante.identificador:
        raise Conflict("Nadie se representa a sí mismo: poderdante y representante coinciden.")
    desde = data.vigente_desde or _hoy(uow.tenant_id)
    if data.vigente_hasta is not None and data.vigente_hasta < desde:
        raise Conflict("La representación acabaría antes de empezar (vigente_hasta < desde).")
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "poderdante_tipo": data.poderdante.tipo_identificador.value,
        "poderdante": data.poderdante.identificador,
        "poderdante_nombre": data.poderdante.nombre,
        "representante_tipo": data.representante.tipo_identificador.value,
        "representante": data.representante.identificador,
        "representante_nombre": data.representante.nombre,
        "vigente_desde": desde,
        "vigente_hasta": data.vigente_hasta,
        "documento": data.documento,
        "registrada_por": uow.actor.sub,
        "registrada_en": datetime.now(UTC),
    }
    uow.add(representaciones, row)
    leida = _read(row)
    uow.audit(
        action="registrar-representacion",
        entity="representacion",
        entity_id=leida.id,
        new=leida.model_dump(mode="json"),
    )
    return leida


async def consultar_representacion(
    session: AsyncSession, *, tenant_id: str, representacion_id: str, for_update: bool = False
) -> RepresentacionRead:
    """One representation of the tenant; another tenant's (or a malformed id) is a 404."""
    try:
        uuid.UUID(representacion_id)
    except ValueError:
        raise NotFound(f"No existe la representación {representacion_id}.") from None
    query = select(representaciones).where(
        representaciones.c.tenant_id == tenant_id, representaciones.c.id == representacion_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe la representación {representacion_id}.")
    return _read(row)


async def revocar_representacion(
    uow: UnitOfWork, *, representacion_id: str, data: RevocacionCreate
) -> RepresentacionRead:
    """Ends a representation from now on; revoking twice is a 409."""
    actual = await consultar_representacion(
        uow.session, tenant_id=uow.tenant_id, representacion_id=representacion_id, for_update=True
    )
    if actual.revocada_en is not None:
        raise Conflict(f"La representación {actual.id} ya está revocada.")
    changes = {
        "revocada_por": uow.actor.sub,
        "revocada_en": datetime.now(UTC),
        "motivo_revocacion": data.motivo.strip(),
    }
    uow.defer(update(representaciones).where(representaciones.c.id == actual.id).values(**changes))
    nueva = RepresentacionRead.model_validate({**actual.model_dump(), **changes})
    uow.audit(
        action="revocar-representacion",
        entity="representacion",
        entity_id=actual.id,
        old=actual.model_dump(mode="json"),
        new=nueva.model_dump(mode="json"),
    )
    return nueva


async def listar_representaciones(
    session: AsyncSession,
    *,
    tenant_id: str,
    poderdante: str | None = None,
    representante: str | None = None,
    size: int = 50,
    page: int = 1,
) -> tuple[list[RepresentacionRead], int]:
    """The tenant's representations, newest first, optionally of one person."""
    where = [representaciones.c.tenant_id == tenant_id]
    if poderdante is not None:
        where.append(representaciones.c.poderdante == poderdante)
    if representante is not None:
        where.append(representaciones.c.representante == representante)
    total = int(
        (
            await session.execute(select(func.count()).select_from(representaciones).where(*where))
        ).scalar_one()
    )
    rows = (
        await session.execute(
            select(representaciones)
            .where(*where)
            .order_by(representaciones.c.registrada_en.desc(), representaciones.c.id.desc())
            .offset((page - 1) * size)
            .limit(size)
        )
    ).all()
    return [_read(r) for r in rows], total


async def representados_por(
    session: AsyncSession, *, tenant_id: str, representante: str, poderdantes: set[str]
) -> set[str]:
    """Which of ``poderdantes`` the representante may act for today (recorded, in force,
    not revoked)."""
    if not poderdantes:
        return set()
    hoy = _hoy(tenant_id)
    rows = await session.execute(
        select(representaciones.c.poderdante).where(
            representaciones.c.tenant_id == tenant_id,
            representaciones.c.representante == representante,
            representaciones.c.poderdante.in_(sorted(poderdantes)),
            representaciones.c.revocada_en.is_(None),
            representaciones.c.vigente_desde <= hoy,
            or_(
                representaciones.c.vigente_hasta.is_(None),
                and_(representaciones.c.vigente_hasta >= hoy),
            ),
        )
    )
    return {str(r) for r in rows.scalars()}
