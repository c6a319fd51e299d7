"""Use cases of oficinas, libros and numbering, one transaction each (see __init__)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Select,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import TENANT_SETTING
from services.common.errors import Conflict, FieldError, NotFound, Unprocessable
from services.common.uow import LeanUnitOfWork, UnitOfWork
from services.registro import domain
from services.registro.domain import TipoAsiento
from services.registro.oficinas.domain import (
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
from services.registro.oficinas.models import libros, numeracion, oficinas
from services.registro.oficinas.schemas import (
    CambioProgramado,
    CierreCreate,
    LibroCreate,
    LibroRead,
    NumeracionRead,
    NumeracionUpdate,
    OficinaCreate,
    OficinaRead,
)

__all__ = [
    "BLOQUEO_NUMERACION",
    "LibroCerrado",
    "Numeracion",
    "PlanNumeracion",
    "abrir_libro",
    "abrir_oficina",
    "cerrar_libro",
    "cerrar_oficina",
    "configurar_numeracion",
    "crear_libro",
    "crear_oficina",
    "consultar_libro",
    "consultar_numeracion",
    "consultar_oficina",
    "listar_libros",
    "listar_oficinas",
    "numerar",
    "oficina_electronica",
    "planificar_numeracion",
]


# Advisory lock (class, tenant) standing for "the entity's numbering mode": shared
# while registering, exclusive while changing it. Any constant of int4 would do.
_LOCK_NUMERACION = 0x52454731


@dataclass(frozen=True)
class PlanNumeracion:
    """Where an asiento will be numbered, once every check passed: the series and the
    shape of its number (the number itself is taken afterwards)."""

    anio: int
    serie: str
    modo: ModoNumeracion
    oficina: str | None
    libro_id: str | None
    # The oficina's prefix in per-oficina numbering (E/2026/002000012), else None.
    prefijo_oficina: int | None = None


@dataclass(frozen=True)
class Numeracion:
    """The number an asiento gets, and where: what registrar_asiento stores."""

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


async def consultar_oficina(session: AsyncSession, *, tenant_id: str, codigo: str) -> OficinaRead:
    """One oficina of the entity; another entity's is a 404."""
    return _oficina_read(await _oficina_row(session, tenant_id=tenant_id, codigo=codigo))


async def listar_oficinas(
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


async def consultar_libro(session: AsyncSession, *, tenant_id: str, libro_id: str) -> LibroRead:
    """One libro of the entity; another entity's (or a malformed id) is a 404."""
    return _libro_read(await _libro_row(session, tenant_id=tenant_id, libro_id=libro_id))


async def listar_libros(
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


async def consultar_numeracion(
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
    plan = await planificar_numeracion(uow, tipo=tipo, oficina=oficina, fecha=fecha)
    secuencia = await uow.next_number(plan.serie, plan.anio)
    if plan.prefijo_oficina is not None:
        numero = format_numero_oficina(tipo, plan.anio, plan.prefijo_oficina, secuencia)
    else:
        numero = domain.format_numero(tipo, plan.anio, secuencia)
    return Numeracion(
        anio=plan.anio,
        secuencia=secuencia,
        numero=numero,
        modo=plan.modo,
        oficina=plan.oficina,
        libro_id=plan.libro_id,
    )


# The shared numbering lock as constant SQL, for a LeanUnitOfWork to take with its BEGIN
# (``first``): the same key as _bloqueo_numeracion's, the tenant read back from the
# transaction's own setting.
BLOQUEO_NUMERACION = (
    f"SELECT pg_advisory_xact_lock_shared({_LOCK_NUMERACION}, "
    f"hashtext(current_setting('{TENANT_SETTING}')))"
)


@functools.cache
def _consulta_plan(*, con_oficina: bool) -> Select[Any]:
    """What registering checks, in one statement built once: the numbering mode of the
    year, the oficina (share-locked) and the libros of the tipo (share-locked)."""
    tenant = bindparam("tenant", type_=String)
    modo_q = (
        select(numeracion.c.modo)
        .where(numeracion.c.tenant_id == tenant, numeracion.c.desde_anio <= bindparam("anio"))
        .order_by(numeracion.c.desde_anio.desc())
        .limit(1)
        .scalar_subquery()
    )
    # The oficina and the libros ride along as JSON: one round trip for everything.
    oficina_q = (
        select(func.json_build_array(oficinas.c.estado, oficinas.c.prefijo, type_=JSON))
        .where(oficinas.c.tenant_id == tenant, oficinas.c.codigo == bindparam("codigo"))
        .with_for_update(read=True)
        .scalar_subquery()
    )
    del_tipo = (
        select(libros.c.id, libros.c.oficina, libros.c.estado)
        .where(libros.c.tenant_id == tenant, libros.c.tipo == bindparam("tipo"))
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
    return select(modo_q, oficina_q if con_oficina else null(), libros_q)


async def planificar_numeracion(
    uow: UnitOfWork | LeanUnitOfWork, *, tipo: TipoAsiento, oficina: str | None, fecha: datetime
) -> PlanNumeracion:
    """Every check of :func:`numerar` and the series to number in, without taking a number
    (the caller takes it, possibly in the same statement as its writes).

    A LeanUnitOfWork must have taken BLOQUEO_NUMERACION first (its ``first``).
    """
    anio = domain.anio_registral(fecha, uow.tenant_id)
    codigo = oficina.strip().upper() if oficina is not None else None
    if isinstance(uow, UnitOfWork):
        # Before reading the mode (a statement of its own, for a snapshot taken after it).
        await uow.session.execute(_bloqueo_numeracion(uow.tenant_id, exclusivo=False))
    fila = await uow.fetch_first(
        _consulta_plan(con_oficina=codigo is not None),
        {"tenant": uow.tenant_id, "anio": anio, "codigo": codigo, "tipo": tipo.value},
    )
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
        return PlanNumeracion(
            anio=anio,
            serie=serie_oficina(tipo, codigo),
            modo=modo,
            oficina=codigo,
            libro_id=libro.id if libro else None,
            prefijo_oficina=int(prefijo),
        )
    return PlanNumeracion(
        anio=anio,
        serie=domain.serie_de(tipo),
        modo=modo,
        oficina=codigo,
        libro_id=libro.id if libro else None,
    )
