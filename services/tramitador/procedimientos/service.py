"""Use cases of the catalogue: seed, import, publish, retire, read and export versions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Conflict, FieldError, NotFound, Unprocessable
from services.common.uow import UnitOfWork
from services.tramitador.procedimientos.domain import (
    Definicion,
    DefinicionInvalida,
    EstadoVersion,
    definiciones_incluidas,
    leer_yaml,
    puede_pasar,
    validar,
)
from services.tramitador.procedimientos.models import procedimiento_versiones as versiones
from services.tramitador.procedimientos.schemas import ProcedimientoDetalle, ProcedimientoRead

__all__ = [
    "asegurar_catalogo",
    "consultar_version",
    "definicion_de",
    "exportar_yaml",
    "importar_definicion",
    "leer_definicion",
    "listar_procedimientos",
    "listar_versiones",
    "publicar_version",
    "retirar_version",
    "version_vigente",
]

SEMBRADOR = "sistema:catalogo"


async def asegurar_catalogo(session: AsyncSession, *, tenant_id: str) -> None:
    """Seeds the shipped definitions (version 1, published) for a council that has none.

    Every council starts with the platform's catalogue; once it has any version of its
    own this does nothing, so retiring or replacing a seeded procedure sticks.
    """
    exists = await session.execute(
        select(versiones.c.id).where(versiones.c.tenant_id == tenant_id).limit(1)
    )
    if exists.first() is not None:
        return
    ahora = datetime.now(UTC)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "codigo": d.codigo,
            "version": 1,
            "estado": EstadoVersion.PUBLICADO.value,
            "nombre": d.nombre,
            "definicion": d.data,
            "creado_por": SEMBRADOR,
            "publicado_at": ahora,
        }
        for d in definiciones_incluidas()
    ]
    await session.execute(insert(versiones).values(rows).on_conflict_do_nothing())


def leer_definicion(*, yaml_text: str | None = None, data: Any = None) -> Definicion:
    """A definition from YAML text or parsed JSON, validated (422 naming the schema path)."""
    try:
        parsed = leer_yaml(yaml_text) if yaml_text is not None else data
        if not isinstance(parsed, dict):
            raise DefinicionInvalida([])
        return validar(parsed)
    except DefinicionInvalida as exc:
        errors = [FieldError(f"definicion.{p.ruta}", p.mensaje) for p in exc.problemas]
        raise Unprocessable(
            "La definición del procedimiento no es válida.",
            errors=errors or [FieldError("definicion", "debe ser un objeto")],
        ) from None


async def importar_definicion(uow: UnitOfWork, *, definicion: Definicion) -> ProcedimientoDetalle:
    """Stores a definition as the next version of its procedure, as a borrador."""
    session = uow.session
    await asegurar_catalogo(session, tenant_id=uow.tenant_id)
    ultima = await session.execute(
        select(func.coalesce(func.max(versiones.c.version), 0)).where(
            versiones.c.tenant_id == uow.tenant_id, versiones.c.codigo == definicion.codigo
        )
    )
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "codigo": definicion.codigo,
        "version": int(ultima.scalar_one()) + 1,
        "estado": EstadoVersion.BORRADOR.value,
        "nombre": definicion.nombre,
        "definicion": definicion.data,
        "creado_por": uow.actor.sub,
        "publicado_at": None,
    }
    await session.execute(insert(versiones).values(row))
    uow.audit(
        action="importar",
        entity="procedimiento",
        entity_id=f"{row['codigo']}@{row['version']}",
        new={"codigo": row["codigo"], "version": row["version"], "nombre": row["nombre"]},
    )
    return _detalle(row)


async def _fila(session: AsyncSession, tenant_id: str, codigo: str, version: int) -> Any:
    row = (
        await session.execute(
            select(versiones).where(
                versiones.c.tenant_id == tenant_id,
                versiones.c.codigo == codigo,
                versiones.c.version == version,
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No existe la versión {version} del procedimiento {codigo}.")
    return row


async def _cambiar_estado(
    uow: UnitOfWork, *, codigo: str, version: int, hacia: EstadoVersion
) -> ProcedimientoDetalle:
    session = uow.session
    await asegurar_catalogo(session, tenant_id=uow.tenant_id)
    row = await _fila(session, uow.tenant_id, codigo, version)
    desde = EstadoVersion(row.estado)
    if not puede_pasar(desde, hacia):
        raise Conflict(
            f"La versión {version} de {codigo} está {desde.value}: no puede pasar a {hacia.value}."
        )
    ahora = datetime.now(UTC)
    if hacia is EstadoVersion.PUBLICADO:
        # One published version at a time: the previous one stops taking new expedientes.
        await session.execute(
            update(versiones)
            .where(
                versiones.c.tenant_id == uow.tenant_id,
                versiones.c.codigo == codigo,
                versiones.c.estado == EstadoVersion.PUBLICADO.value,
            )
            .values(estado=EstadoVersion.RETIRADO.value, retirado_at=ahora)
        )
    cambios: dict[str, Any] = {"estado": hacia.value}
    cambios["publicado_at" if hacia is EstadoVersion.PUBLICADO else "retirado_at"] = ahora
    await session.execute(update(versiones).where(versiones.c.id == row.id).values(**cambios))
    uow.audit(
        action="publicar" if hacia is EstadoVersion.PUBLICADO else "retirar",
        entity="procedimiento",
        entity_id=f"{codigo}@{version}",
        old={"estado": desde.value},
        new={"estado": hacia.value},
    )
    return _detalle({**row._mapping, **cambios})


async def publicar_version(uow: UnitOfWork, *, codigo: str, version: int) -> ProcedimientoDetalle:
    """Publishes a borrador: immutable from now on, and the one new expedientes use."""
    return await _cambiar_estado(uow, codigo=codigo, version=version, hacia=EstadoVersion.PUBLICADO)


async def retirar_version(uow: UnitOfWork, *, codigo: str, version: int) -> ProcedimientoDetalle:
    """Retires a published version: no new expedientes; open ones keep it."""
    return await _cambiar_estado(uow, codigo=codigo, version=version, hacia=EstadoVersion.RETIRADO)


async def listar_procedimientos(
    session: AsyncSession, *, tenant_id: str, estado: EstadoVersion | None
) -> list[ProcedimientoRead]:
    """The council's procedures in a state (every version when ``estado`` is None)."""
    await asegurar_catalogo(session, tenant_id=tenant_id)
    query = select(versiones).where(versiones.c.tenant_id == tenant_id)
    if estado is not None:
        query = query.where(versiones.c.estado == estado.value)
    rows = await session.execute(query.order_by(versiones.c.codigo, versiones.c.version))
    return [_resumen(r._mapping) for r in rows]


async def listar_versiones(
    session: AsyncSession, *, tenant_id: str, codigo: str
) -> list[ProcedimientoRead]:
    """Every version of one procedure, oldest first (404 when it has none)."""
    await asegurar_catalogo(session, tenant_id=tenant_id)
    rows = (
        await session.execute(
            select(versiones)
            .where(versiones.c.tenant_id == tenant_id, versiones.c.codigo == codigo)
            .order_by(versiones.c.version)
        )
    ).all()
    if not rows:
        raise NotFound(f"No existe el procedimiento {codigo}.")
    return [_resumen(r._mapping) for r in rows]


async def consultar_version(
    session: AsyncSession, *, tenant_id: str, codigo: str, version: int
) -> ProcedimientoDetalle:
    """One version with its definition."""
    await asegurar_catalogo(session, tenant_id=tenant_id)
    return _detalle((await _fila(session, tenant_id, codigo, version))._mapping)


async def exportar_yaml(session: AsyncSession, *, tenant_id: str, codigo: str, version: int) -> str:
    """One version as the YAML file it can be imported from again."""
    detalle = await consultar_version(session, tenant_id=tenant_id, codigo=codigo, version=version)
    return yaml.safe_dump(detalle.definicion, allow_unicode=True, sort_keys=False, width=100)


async def version_vigente(
    session: AsyncSession, *, tenant_id: str, codigo: str
) -> tuple[int, Definicion] | None:
    """The published version new expedientes of ``codigo`` start with, if any."""
    await asegurar_catalogo(session, tenant_id=tenant_id)
    row = (
        await session.execute(
            select(versiones.c.version, versiones.c.definicion).where(
                versiones.c.tenant_id == tenant_id,
                versiones.c.codigo == codigo,
                versiones.c.estado == EstadoVersion.PUBLICADO.value,
            )
        )
    ).first()
    return None if row is None else (int(row.version), Definicion(row.definicion))


async def definicion_de(
    session: AsyncSession, *, tenant_id: str, codigo: str, version: int
) -> Definicion:
    """The definition an expediente keeps: the exact version it started with."""
    return Definicion((await _fila(session, tenant_id, codigo, version)).definicion)


def _resumen(row: Any) -> ProcedimientoRead:
    d = row["definicion"]
    return ProcedimientoRead(
        codigo=row["codigo"],
        version=row["version"],
        estado=row["estado"],
        nombre=row["nombre"],
        sia=d.get("sia"),
        normativa=d["normativa"],
        unidad_tramitadora=d.get("unidad_tramitadora"),
        plazo_resolucion=d["plazo_resolucion"],
        silencio=d["silencio"],
        iniciacion=d["iniciacion"],
        publicado_at=row.get("publicado_at"),
    )


def _detalle(row: Any) -> ProcedimientoDetalle:
    return ProcedimientoDetalle(**_resumen(row).model_dump(), definicion=dict(row["definicion"]))
