"""Oficinas de registro, libros de entrada y salida, and how an entity numbers its asientos.

An administrator creates the entity's oficinas (DIR3 codes), opens and closes its
libros, and chooses the numbering mode (central or per oficina); every change is
one transaction and audited. ``numerar`` is what registering calls: it checks the
oficina and the libro, and takes the asiento's gapless number in the mode of its
year. The rules themselves live in oficinas_domain.py.

Concurrency: registering holds a shared lock on what it checked (the oficina and
libro rows, and an advisory lock standing for the entity's numbering mode) until
it commits; closing an oficina or a libro, or changing the mode, takes the
exclusive one, so it waits for asientos in flight and no asiento slips into a
libro closed before it commits, or into a year under another mode.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    exists,
    false,
    func,
    insert,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Conflict, FieldError, NotFound, Unprocessable
from services.common.inputs import DIR3_OFICINA
from services.common.uow import UnitOfWork
from services.registro import domain
from services.registro.domain import TipoAsiento
from services.registro.models import metadata
from services.registro.oficinas_domain import (
    MAX_PREFIJO,
    PREFIJO_SERIES,
    EstadoLibro,
    EstadoOficina,
    LibroNoDisponible,
    LibroVigente,
    ModoNumeracion,
    cambio_de_modo,
    elegir_libro,
    format_numero_oficina,
    modo_vigente,
    nombre_libro,
    serie_oficina,
    validate_codigo_oficina,
)

__all__ = [
    "CambioProgramado",
    "CierreCreate",
    "LibroCerrado",
    "LibroCreate",
    "LibroRead",
    "Numeracion",
    "NumeracionRead",
    "NumeracionUpdate",
    "OficinaCreate",
    "OficinaRead",
    "abrir_libro",
    "abrir_oficina",
    "cerrar_libro",
    "cerrar_oficina",
    "configurar_numeracion",
    "crear_libro",
    "crear_oficina",
    "get_libro",
    "get_numeracion",
    "get_oficina",
    "libros",
    "list_libros",
    "list_oficinas",
    "numeracion",
    "oficina_electronica",
    "numerar",
    "oficinas",
]

oficinas = Table(
    "oficinas",
    metadata,
    Column("tenant_id", String(5), nullable=False),
    Column("codigo", String(9), nullable=False),
    Column("nombre", String(80), nullable=False),
    # Goes into the numbers of the oficina's asientos in per-oficina mode (1 to 999).
    Column("prefijo", SmallInteger, nullable=False),
    Column("estado", String(10), nullable=False),
    Column("creada_por", String(255), nullable=False),
    Column("creada_en", DateTime(timezone=True), nullable=False),
    Column("cerrada_por", String(255)),
    Column("cerrada_en", DateTime(timezone=True)),
    Column("motivo_cierre", Text),
    # The oficina of the registro electrónico: the sede's asientos are made there.
    Column("electronica", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("tenant_id", "codigo"),
    UniqueConstraint("tenant_id", "prefijo", name="uq_oficinas_prefijo"),
    CheckConstraint("estado IN ('activa', 'cerrada')", name="ck_oficinas_estado"),
)

libros = Table(
    "libros",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("tipo", String(10), nullable=False),
    # NULL: the central libro of the tipo; otherwise the oficina whose libro it is.
    Column("oficina", String(9)),
    Column("estado", String(10), nullable=False),
    Column("abierto_por", String(255), nullable=False),
    Column("abierto_en", DateTime(timezone=True), nullable=False),
    Column("cerrado_por", String(255)),
    Column("cerrado_en", DateTime(timezone=True)),
    Column("motivo_cierre", Text),
    ForeignKeyConstraint(
        ["tenant_id", "oficina"],
        ["registro.oficinas.tenant_id", "registro.oficinas.codigo"],
        name="fk_libros_oficina",
    ),
    CheckConstraint("tipo IN ('entrada', 'salida')", name="ck_libros_tipo"),
    CheckConstraint("estado IN ('abierto', 'cerrado')", name="ck_libros_estado"),
    # One libro per tipo and ámbito: a closed one is opened again, not duplicated.
    Index(
        "ux_libros_central",
        "tenant_id",
        "tipo",
        unique=True,
        postgresql_where=text("oficina IS NULL"),
    ),
    Index(
        "ux_libros_oficina",
        "tenant_id",
        "tipo",
        "oficina",
        unique=True,
        postgresql_where=text("oficina IS NOT NULL"),
    ),
)

# The entity's numbering mode over time: each row is a mode from a year on. No rows
# means central, as every entity numbered before modes existed.
numeracion = Table(
    "numeracion",
    metadata,
    Column("tenant_id", String(5), nullable=False),
    Column("desde_anio", Integer, nullable=False),
    Column("modo", String(10), nullable=False),
    Column("configurado_por", String(255), nullable=False),
    Column("configurado_en", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "desde_anio"),
    CheckConstraint("modo IN ('central', 'oficina')", name="ck_numeracion_modo"),
)

# Advisory lock (class, tenant) standing for "the entity's numbering mode": shared
# while registering, exclusive while changing it. Any constant of int4 would do.
_LOCK_NUMERACION = 0x52454731


def _motivo_no_vacio(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("no puede estar en blanco")
    return stripped


class OficinaCreate(BaseModel):
    """What an administrator sends to create an oficina de registro."""

    model_config = ConfigDict(extra="forbid")

    codigo: str = Field(
        description="Código DIR3 de la oficina (empieza por O)",
        examples=["O00002741"],
        json_schema_extra=DIR3_OFICINA,
    )
    nombre: str = Field(min_length=1, max_length=80, examples=["Oficina de registro central"])
    electronica: bool = Field(
        default=False,
        description="Oficina del registro electrónico: en ella se registran los asientos "
        "que los ciudadanos presentan por la sede sin nombrar oficina (una por entidad)",
    )

    @field_validator("codigo")
    @classmethod
    def _valid_codigo(cls, value: str) -> str:
        return validate_codigo_oficina(value)

    @field_validator("nombre")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _motivo_no_vacio(value)


class OficinaRead(BaseModel):
    """An oficina de registro of the entity."""

    codigo: str = Field(examples=["O00002741"])
    nombre: str
    prefijo: int = Field(
        description="Número de la oficina en la entidad (1 a 999), asignado al crearla: en "
        "numeración por oficina va tras el año (E/2026/002000012 es el asiento 12 de la 2)",
        examples=[2],
    )
    estado: EstadoOficina
    electronica: bool = False
    creada_por: str
    creada_en: datetime
    cerrada_por: str | None = None
    cerrada_en: datetime | None = None
    motivo_cierre: str | None = None


class CierreCreate(BaseModel):
    """Why an oficina or a libro is closed (kept with it and in the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    motivo: str = Field(min_length=1, max_length=500, examples=["Cierre del ejercicio"])

    @field_validator("motivo")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _motivo_no_vacio(value)


class LibroCreate(BaseModel):
    """What an administrator sends to open a libro: its tipo and, optionally, its oficina."""

    model_config = ConfigDict(extra="forbid")

    tipo: TipoAsiento
    oficina: str | None = Field(
        default=None,
        description="Código DIR3 de la oficina del libro; sin él, el libro central del tipo",
        examples=["O00002741"],
        json_schema_extra=DIR3_OFICINA,
    )

    @field_validator("oficina")
    @classmethod
    def _valid_oficina(cls, value: str | None) -> str | None:
        return None if value is None else validate_codigo_oficina(value)


class LibroRead(BaseModel):
    """A libro de entrada or de salida, central or of one oficina, and where it stands."""

    id: str
    tipo: TipoAsiento
    oficina: str | None = Field(description="null: libro central del tipo")
    nombre: str = Field(examples=["libro de entrada de la oficina O00002741"])
    estado: EstadoLibro
    abierto_por: str = Field(description="Quién lo abrió (o reabrió) por última vez")
    abierto_en: datetime
    cerrado_por: str | None = Field(default=None, description="Solo mientras está cerrado")
    cerrado_en: datetime | None = None
    motivo_cierre: str | None = None


class NumeracionUpdate(BaseModel):
    """The numbering mode an administrator asks for."""

    model_config = ConfigDict(extra="forbid")

    modo: ModoNumeracion


class CambioProgramado(BaseModel):
    """A change of mode that takes effect on 1 January of ``desde_anio``."""

    modo: ModoNumeracion
    desde_anio: int


class NumeracionRead(BaseModel):
    """How the entity numbers this year, and the change scheduled for a later one, if any."""

    modo: ModoNumeracion
    anio: int = Field(description="Año registral en curso de la entidad")
    proximo: CambioProgramado | None = None


@dataclass(frozen=True)
class Numeracion:
    """The number an asiento gets, and where: what register_asiento stores."""

    anio: int
    secuencia: int
    numero: str
    modo: ModoNumeracion
    oficina: str | None
    libro_id: str | None


class LibroCerrado(Conflict):
    """Registering into a libro that is closed, or that does not exist (409)."""

    slug = "libro-cerrado"


# The counter that gives each new oficina its prefijo (one series per entity, no year).
SERIE_PREFIJOS = "oficinas-prefijo"

# --- oficinas ------------------------------------------------------------------------------------


def _codigo_o_404(codigo: str) -> str:
    """A code from a URL; one that cannot be an oficina's is as absent as a missing one."""
    try:
        return validate_codigo_oficina(codigo)
    except ValueError:
        raise NotFound(f"No existe la oficina {codigo}.") from None


async def _oficina_row(
    session: AsyncSession, *, tenant_id: str, codigo: str, for_update: bool = False
) -> dict[str, Any]:
    query = select(oficinas).where(
        oficinas.c.tenant_id == tenant_id, oficinas.c.codigo == _codigo_o_404(codigo)
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe la oficina {codigo}.")
    return dict(row._mapping)


def _oficina_read(row: dict[str, Any]) -> OficinaRead:
    return OficinaRead.model_validate({k: v for k, v in row.items() if k != "tenant_id"})


async def crear_oficina(
    uow: UnitOfWork, *, data: OficinaCreate, now: datetime | None = None
) -> OficinaRead:
    """Creates an active oficina with the next prefijo; a code taken already is a 409.

    Written at once with ON CONFLICT DO NOTHING, so of two concurrent creations
    the second answers 409 rather than failing at commit (and, rolled back, gives
    its prefijo back: prefijos have no gaps either).
    """
    if data.electronica:
        actual = await oficina_electronica(uow.session, tenant_id=uow.tenant_id)
        if actual is not None:
            raise Conflict(f"La entidad ya tiene oficina del registro electrónico: {actual}.")
    prefijo = await uow.next_number(SERIE_PREFIJOS, 0)
    if prefijo > MAX_PREFIJO:
        raise Conflict(f"La entidad ya tiene {MAX_PREFIJO} oficinas, el máximo.")
    row: dict[str, Any] = {
        "tenant_id": uow.tenant_id,
        "codigo": data.codigo,
        "nombre": data.nombre,
        "prefijo": prefijo,
        "estado": EstadoOficina.ACTIVA.value,
        "electronica": data.electronica,
        "creada_por": uow.actor.sub,
        "creada_en": now or datetime.now(UTC),
    }
    inserted = await uow.session.execute(
        pg_insert(oficinas).values(**row).on_conflict_do_nothing().returning(oficinas.c.codigo)
    )
    if inserted.first() is None:
        # A taken code, or (in a race) a second oficina electrónica.
        raise Conflict(
            f"Ya existe la oficina {data.codigo} (o ya hay una oficina del registro "
            "electrónico) en la entidad."
        )
    oficina = _oficina_read(row)
    uow.audit(
        action="crear-oficina",
        entity="oficina",
        entity_id=oficina.codigo,
        new=oficina.model_dump(mode="json"),
    )
    return oficina


async def oficina_electronica(session: AsyncSession, *, tenant_id: str) -> str | None:
    """The code of the entity's oficina of the registro electrónico, if it marked one."""
    codigo = (
        await session.execute(
            select(oficinas.c.codigo).where(
                oficinas.c.tenant_id == tenant_id, oficinas.c.electronica.is_(True)
            )
        )
    ).scalar_one_or_none()
    return str(codigo) if codigo is not None else None


async def get_oficina(session: AsyncSession, *, tenant_id: str, codigo: str) -> OficinaRead:
    """One oficina of the entity; another entity's is a 404."""
    return _oficina_read(await _oficina_row(session, tenant_id=tenant_id, codigo=codigo))


async def list_oficinas(
    session: AsyncSession, *, tenant_id: str, estado: EstadoOficina | None = None
) -> list[OficinaRead]:
    """The entity's oficinas by code (an entity has a handful: no pagination)."""
    query = select(oficinas).where(oficinas.c.tenant_id == tenant_id)
    if estado is not None:
        query = query.where(oficinas.c.estado == estado.value)
    rows = (await session.execute(query.order_by(oficinas.c.codigo))).all()
    return [_oficina_read(dict(r._mapping)) for r in rows]


async def _cambiar_oficina(
    uow: UnitOfWork, *, codigo: str, action: str, changes: dict[str, Any]
) -> OficinaRead:
    """Moves an oficina to another estado (409 if it is there already), audited."""
    row = await _oficina_row(uow.session, tenant_id=uow.tenant_id, codigo=codigo, for_update=True)
    if row["estado"] == changes["estado"]:
        raise Conflict(f"La oficina {row['codigo']} ya está {row['estado']}.")
    uow.defer(
        update(oficinas)
        .where(oficinas.c.tenant_id == uow.tenant_id, oficinas.c.codigo == row["codigo"])
        .values(**changes)
    )
    old = _oficina_read(row)
    new = _oficina_read({**row, **changes})
    uow.audit(
        action=action,
        entity="oficina",
        entity_id=row["codigo"],
        old=old.model_dump(mode="json"),
        new=new.model_dump(mode="json"),
    )
    return new


async def cerrar_oficina(
    uow: UnitOfWork, *, codigo: str, data: CierreCreate, now: datetime | None = None
) -> OficinaRead:
    """Closes an oficina: nothing more is registered at it until it is reopened.

    Its libros keep their estado; they just take nothing while it is closed.
    """
    changes = {
        "estado": EstadoOficina.CERRADA.value,
        "cerrada_por": uow.actor.sub,
        "cerrada_en": now or datetime.now(UTC),
        "motivo_cierre": data.motivo,
    }
    return await _cambiar_oficina(uow, codigo=codigo, action="cerrar-oficina", changes=changes)


async def abrir_oficina(uow: UnitOfWork, *, codigo: str) -> OficinaRead:
    """Reopens a closed oficina (the closure stays in the audit trail)."""
    changes = {
        "estado": EstadoOficina.ACTIVA.value,
        "cerrada_por": None,
        "cerrada_en": None,
        "motivo_cierre": None,
    }
    return await _cambiar_oficina(uow, codigo=codigo, action="reabrir-oficina", changes=changes)


# --- libros --------------------------------------------------------------------------------------


def _libro_read(row: dict[str, Any]) -> LibroRead:
    tipo = TipoAsiento(row["tipo"])
    data = {k: v for k, v in row.items() if k != "tenant_id"}
    return LibroRead.model_validate({**data, "nombre": nombre_libro(tipo, row["oficina"])})


async def _libro_row(
    session: AsyncSession, *, tenant_id: str, libro_id: str, for_update: bool = False
) -> dict[str, Any]:
    try:
        uuid.UUID(libro_id)
    except ValueError:
        raise NotFound(f"No existe el libro {libro_id}.") from None
    query = select(libros).where(libros.c.tenant_id == tenant_id, libros.c.id == libro_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe el libro {libro_id}.")
    return dict(row._mapping)


async def _estado_oficina(uow: UnitOfWork, codigo: str) -> EstadoOficina | None:
    """The oficina's estado, share-locked until commit so that it cannot close meanwhile."""
    estado = (
        await uow.session.execute(
            select(oficinas.c.estado)
            .where(oficinas.c.tenant_id == uow.tenant_id, oficinas.c.codigo == codigo)
            .with_for_update(read=True)
        )
    ).scalar_one_or_none()
    return None if estado is None else EstadoOficina(estado)


def _oficina_no_valida(codigo: str, estado: EstadoOficina | None) -> Unprocessable:
    motivo = (
        f"no existe la oficina {codigo} en la entidad"
        if estado is None
        else f"la oficina {codigo} está cerrada"
    )
    return Unprocessable("Datos no válidos: oficina", errors=[FieldError("oficina", motivo)])


async def crear_libro(
    uow: UnitOfWork, *, data: LibroCreate, now: datetime | None = None
) -> LibroRead:
    """Opens a new libro of a tipo, central or of an active oficina.

    There is one libro per tipo and ámbito: a second is a 409 (a closed one is
    reopened instead). From this moment on the tipo needs an open libro.
    """
    if data.oficina is not None:
        estado = await _estado_oficina(uow, data.oficina)
        if estado is not EstadoOficina.ACTIVA:
            raise _oficina_no_valida(data.oficina, estado)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "tipo": data.tipo.value,
        "oficina": data.oficina,
        "estado": EstadoLibro.ABIERTO.value,
        "abierto_por": uow.actor.sub,
        "abierto_en": now or datetime.now(UTC),
    }
    inserted = await uow.session.execute(
        pg_insert(libros).values(**row).on_conflict_do_nothing().returning(libros.c.id)
    )
    if inserted.first() is None:
        nombre = nombre_libro(data.tipo, data.oficina)
        raise Conflict(f"Ya existe el {nombre}; si está cerrado, se vuelve a abrir.")
    libro = _libro_read(row)
    uow.audit(
        action="abrir-libro", entity="libro", entity_id=libro.id, new=libro.model_dump(mode="json")
    )
    return libro


async def get_libro(session: AsyncSession, *, tenant_id: str, libro_id: str) -> LibroRead:
    """One libro of the entity; another entity's (or a malformed id) is a 404."""
    return _libro_read(await _libro_row(session, tenant_id=tenant_id, libro_id=libro_id))


async def list_libros(
    session: AsyncSession,
    *,
    tenant_id: str,
    tipo: TipoAsiento | None = None,
    oficina: str | None = None,
    estado: EstadoLibro | None = None,
) -> list[LibroRead]:
    """The entity's libros: by tipo, the central one first, then by oficina."""
    query = select(libros).where(libros.c.tenant_id == tenant_id)
    if tipo is not None:
        query = query.where(libros.c.tipo == tipo.value)
    if oficina is not None:
        query = query.where(libros.c.oficina == oficina)
    if estado is not None:
        query = query.where(libros.c.estado == estado.value)
    query = query.order_by(libros.c.tipo, libros.c.oficina.asc().nulls_first())
    return [_libro_read(dict(r._mapping)) for r in (await session.execute(query)).all()]


async def _cambiar_libro(
    uow: UnitOfWork, *, libro_id: str, action: str, changes: dict[str, Any]
) -> LibroRead:
    """Moves a libro to another estado (409 if it is there already), audited.

    The row lock waits for registrations holding the libro, so the change is
    ordered after every asiento they put in it.
    """
    row = await _libro_row(uow.session, tenant_id=uow.tenant_id, libro_id=libro_id, for_update=True)
    old = _libro_read(row)
    if row["estado"] == changes["estado"]:
        raise Conflict(f"El {old.nombre} ya está {row['estado']}.")
    uow.defer(update(libros).where(libros.c.id == row["id"]).values(**changes))
    new = _libro_read({**row, **changes})
    uow.audit(
        action=action,
        entity="libro",
        entity_id=str(row["id"]),
        old=old.model_dump(mode="json"),
        new=new.model_dump(mode="json"),
    )
    return new


async def cerrar_libro(
    uow: UnitOfWork, *, libro_id: str, data: CierreCreate, now: datetime | None = None
) -> LibroRead:
    """Closes a libro: its tipo (at its oficina) takes no asientos until it is reopened."""
    changes = {
        "estado": EstadoLibro.CERRADO.value,
        "cerrado_por": uow.actor.sub,
        "cerrado_en": now or datetime.now(UTC),
        "motivo_cierre": data.motivo,
    }
    return await _cambiar_libro(uow, libro_id=libro_id, action="cerrar-libro", changes=changes)


async def abrir_libro(uow: UnitOfWork, *, libro_id: str, now: datetime | None = None) -> LibroRead:
    """Reopens a closed libro; one of a closed oficina stays closed (409)."""
    row = await _libro_row(uow.session, tenant_id=uow.tenant_id, libro_id=libro_id)
    if row["oficina"] is not None and row["estado"] == EstadoLibro.CERRADO.value:
        estado = await _estado_oficina(uow, row["oficina"])
        if estado is not EstadoOficina.ACTIVA:
            raise Conflict(
                f"La oficina {row['oficina']} está cerrada: reábrala antes que su libro."
            )
    changes = {
        "estado": EstadoLibro.ABIERTO.value,
        "abierto_por": uow.actor.sub,
        "abierto_en": now or datetime.now(UTC),
        "cerrado_por": None,
        "cerrado_en": None,
        "motivo_cierre": None,
    }
    return await _cambiar_libro(uow, libro_id=libro_id, action="reabrir-libro", changes=changes)


# --- numbering -----------------------------------------------------------------------------------


async def _cambios(session: AsyncSession, tenant_id: str) -> list[tuple[int, ModoNumeracion]]:
    rows = (
        await session.execute(
            select(numeracion.c.desde_anio, numeracion.c.modo).where(
                numeracion.c.tenant_id == tenant_id
            )
        )
    ).all()
    return [(int(r.desde_anio), ModoNumeracion(r.modo)) for r in rows]


def _numeracion_read(cambios: list[tuple[int, ModoNumeracion]], anio: int) -> NumeracionRead:
    futuros = sorted((d, m) for d, m in cambios if d > anio)
    proximo = CambioProgramado(modo=futuros[0][1], desde_anio=futuros[0][0]) if futuros else None
    return NumeracionRead(modo=modo_vigente(cambios, anio), anio=anio, proximo=proximo)


async def get_numeracion(
    session: AsyncSession, *, tenant_id: str, now: datetime | None = None
) -> NumeracionRead:
    """The entity's numbering mode this year and any change scheduled for the next."""
    anio = domain.anio_registral(now or datetime.now(UTC), tenant_id)
    return _numeracion_read(await _cambios(session, tenant_id), anio)


def _bloqueo_numeracion(tenant_id: str, *, exclusivo: bool) -> Any:
    lock = func.pg_advisory_xact_lock if exclusivo else func.pg_advisory_xact_lock_shared
    return select(lock(_LOCK_NUMERACION, func.hashtext(tenant_id)))


async def configurar_numeracion(
    uow: UnitOfWork, *, data: NumeracionUpdate, now: datetime | None = None
) -> NumeracionRead:
    """Sets the numbering mode: at once if nothing was numbered this year, else next year.

    The exclusive lock waits for the asientos being registered, so "nothing was
    numbered this year" is read after they commit, and none of them is numbered
    in a mode its year does not have.
    """
    session = uow.session
    await session.execute(_bloqueo_numeracion(uow.tenant_id, exclusivo=True))
    anio = domain.anio_registral(now or datetime.now(UTC), uow.tenant_id)
    counters = uow.tables.counters
    ha_numerado = bool(
        (
            await session.execute(
                select(
                    exists().where(
                        counters.c.tenant_id == uow.tenant_id,
                        counters.c.anio == anio,
                        counters.c.serie.startswith(PREFIJO_SERIES),
                        counters.c.ultimo > 0,
                    )
                )
            )
        ).scalar_one()
    )
    cambios = await _cambios(session, uow.tenant_id)
    plan = cambio_de_modo(cambios, modo=data.modo, anio=anio, ha_numerado=ha_numerado)
    await session.execute(
        delete(numeracion).where(
            numeracion.c.tenant_id == uow.tenant_id, numeracion.c.desde_anio >= plan.desde
        )
    )
    despues = [(d, m) for d, m in cambios if d < plan.desde]
    if plan.anadir:
        uow.defer(
            insert(numeracion).values(
                tenant_id=uow.tenant_id,
                desde_anio=plan.desde,
                modo=data.modo.value,
                configurado_por=uow.actor.sub,
                configurado_en=now or datetime.now(UTC),
            )
        )
        despues.append((plan.desde, data.modo))
    old, new = _numeracion_read(cambios, anio), _numeracion_read(despues, anio)
    if new != old:
        uow.audit(
            action="configurar-numeracion",
            entity="numeracion",
            entity_id=uow.tenant_id,
            old=old.model_dump(mode="json"),
            new=new.model_dump(mode="json"),
        )
    return new


async def numerar(
    uow: UnitOfWork, *, tipo: TipoAsiento, oficina: str | None, fecha: datetime
) -> Numeracion:
    """Checks the oficina and the libro of an asiento and takes its gapless number.

    Raises Unprocessable naming ``oficina`` (missing in per-oficina mode, unknown
    or closed) and LibroCerrado (409) when no open libro takes the asiento. All
    checks run before the number is taken: the counter row stays locked from then
    until commit, and nothing else should make the entity's registrations wait.
    """
    session = uow.session
    anio = domain.anio_registral(fecha, uow.tenant_id)
    codigo = oficina.strip().upper() if oficina is not None else None
    # Before reading the mode (a statement of its own, for a snapshot taken after it).
    await session.execute(_bloqueo_numeracion(uow.tenant_id, exclusivo=False))
    modo_q = (
        select(numeracion.c.modo)
        .where(numeracion.c.tenant_id == uow.tenant_id, numeracion.c.desde_anio <= anio)
        .order_by(numeracion.c.desde_anio.desc())
        .limit(1)
        .scalar_subquery()
    )
    # The oficina and the libros of the tipo, share-locked, ride along as JSON: with
    # the mode, one round trip for everything registering checks.
    oficina_q = (
        select(func.json_build_array(oficinas.c.estado, oficinas.c.prefijo, type_=JSON))
        .where(oficinas.c.tenant_id == uow.tenant_id, oficinas.c.codigo == codigo)
        .with_for_update(read=True)
        .scalar_subquery()
    )
    del_tipo = (
        select(libros.c.id, libros.c.oficina, libros.c.estado)
        .where(libros.c.tenant_id == uow.tenant_id, libros.c.tipo == tipo.value)
        .with_for_update(read=True)
        .subquery()
    )
    libros_q = (
        select(
            func.json_agg(
                func.json_build_array(del_tipo.c.id, del_tipo.c.oficina, del_tipo.c.estado),
                type_=JSON,
            )
        )
        .select_from(del_tipo)
        .scalar_subquery()
    )
    fila = (
        await session.execute(select(modo_q, oficina_q if codigo is not None else null(), libros_q))
    ).one()
    modo = ModoNumeracion(fila[0] or ModoNumeracion.CENTRAL)
    prefijo: int | None = None
    if codigo is not None:
        estado, prefijo = fila[1] if fila[1] is not None else (None, None)
        if estado != EstadoOficina.ACTIVA.value:
            raise _oficina_no_valida(codigo, None if estado is None else EstadoOficina(estado))
    if codigo is None and modo is ModoNumeracion.OFICINA:
        raise Unprocessable(
            "Datos no válidos: oficina",
            errors=[FieldError("oficina", "obligatoria: la entidad numera por oficina")],
        )
    vigentes = [
        LibroVigente(str(id_), tipo, oficina_libro, EstadoLibro(estado_libro))
        for id_, oficina_libro, estado_libro in fila[2] or []
    ]
    try:
        libro = elegir_libro(vigentes, tipo=tipo, oficina=codigo)
    except LibroNoDisponible as exc:
        raise LibroCerrado(str(exc)) from None
    if modo is ModoNumeracion.OFICINA:
        assert codigo is not None and prefijo is not None  # checked above
        secuencia = await uow.next_number(serie_oficina(tipo, codigo), anio)
        numero = format_numero_oficina(tipo, anio, int(prefijo), secuencia)
    else:
        secuencia = await uow.next_number(domain.serie_de(tipo), anio)
        numero = domain.format_numero(tipo, anio, secuencia)
    return Numeracion(
        anio=anio,
        secuencia=secuencia,
        numero=numero,
        modo=modo,
        oficina=codigo,
        libro_id=libro.id if libro else None,
    )
