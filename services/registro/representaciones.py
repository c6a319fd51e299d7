"""Representaciones: who may act for whom before this entity (Ley 39/2015, art. 5 and 6).

A citizen registering through the sede may act for somebody else only when the
register office has recorded that representation (an apoderamiento apud acta, or one
checked in the Registro Electrónico de Apoderamientos): who grants it (poderdante),
who holds it (representante), from and until when. A representation is never deleted;
revoking it records who, when and why, and it stops counting from then on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Conflict, NotFound
from services.common.uow import UnitOfWork
from services.registro.domain import TipoIdentificador, normalize_identificador, tenant_timezone
from services.registro.models import metadata

__all__ = [
    "RepresentacionCreate",
    "RepresentacionRead",
    "RevocacionCreate",
    "get_representacion",
    "list_representaciones",
    "record_representacion",
    "representaciones",
    "representados_por",
    "revoke_representacion",
]

representaciones = Table(
    "representaciones",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("poderdante_tipo", String(10), nullable=False),
    Column("poderdante", String(17), nullable=False),
    Column("poderdante_nombre", String(160), nullable=False),
    Column("representante_tipo", String(10), nullable=False),
    Column("representante", String(17), nullable=False),
    Column("representante_nombre", String(160), nullable=False),
    Column("vigente_desde", Date, nullable=False),
    Column("vigente_hasta", Date),
    Column("documento", String(160)),
    Column("registrada_por", String(255), nullable=False),
    Column("registrada_en", DateTime(timezone=True), nullable=False),
    Column("revocada_por", String(255)),
    Column("revocada_en", DateTime(timezone=True)),
    Column("motivo_revocacion", Text),
    CheckConstraint("vigente_hasta IS NULL OR vigente_hasta >= vigente_desde"),
)


class _Parte(BaseModel):
    """One side of a representation: its identity document and name."""

    model_config = ConfigDict(extra="forbid")

    tipo_identificador: TipoIdentificador
    identificador: str = Field(min_length=1, max_length=17)
    nombre: str = Field(
        min_length=1, max_length=160, description="Nombre y apellidos o razón social"
    )

    @field_validator("identificador")
    @classmethod
    def _valid_identificador(cls, value: str, info: ValidationInfo) -> str:
        tipo = info.data.get("tipo_identificador")
        return value if tipo is None else normalize_identificador(tipo, value)


class RepresentacionCreate(BaseModel):
    """What staff record: who grants, who holds, for how long, and the proof seen."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "poderdante": {
                        "tipo_identificador": "NIF",
                        "identificador": "12345678Z",
                        "nombre": "Lucía García",
                    },
                    "representante": {
                        "tipo_identificador": "NIF",
                        "identificador": "00000000T",
                        "nombre": "Pedro Pérez",
                    },
                    "documento": "Apoderamiento apud acta",
                }
            ]
        },
    )

    poderdante: _Parte
    representante: _Parte
    vigente_desde: date | None = Field(default=None, description="Por defecto, hoy")
    vigente_hasta: date | None = Field(default=None, description="Sin fecha: hasta que se revoque")
    documento: str | None = Field(
        default=None,
        max_length=160,
        description="Dónde consta: apoderamiento apud acta, código del REA, escritura…",
    )


class RevocacionCreate(BaseModel):
    """Why a representation ends."""

    model_config = ConfigDict(extra="forbid")

    motivo: str = Field(min_length=1, max_length=500)


class RepresentacionRead(BaseModel):
    """A recorded representation, and its revocation if any."""

    id: str
    poderdante: _Parte
    representante: _Parte
    vigente_desde: date
    vigente_hasta: date | None
    documento: str | None
    registrada_por: str
    registrada_en: datetime
    revocada_por: str | None = None
    revocada_en: datetime | None = None
    motivo_revocacion: str | None = None


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


async def record_representacion(
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


async def get_representacion(
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


async def revoke_representacion(
    uow: UnitOfWork, *, representacion_id: str, data: RevocacionCreate
) -> RepresentacionRead:
    """Ends a representation from now on; revoking twice is a 409."""
    actual = await get_representacion(
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


async def list_representaciones(
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
