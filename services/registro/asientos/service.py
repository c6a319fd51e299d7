"""Use cases of asientos: register, read, search and annul, one transaction each."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Conflict, FieldError, NotFound, Unprocessable
from services.common.uow import (
    LeanUnitOfWork,
    NumberedAudit,
    NumberedEvent,
    Numbering,
    UnitOfWork,
)
from services.registro import domain
from services.registro.anexos import service as anexos
from services.registro.anexos.domain import AnexoSicres, Limites
from services.registro.asientos.domain import Cursor, EstadoAsiento, Filtros, like_contains
from services.registro.asientos.models import anulaciones, asientos
from services.registro.asientos.schemas import AnulacionCreate, AsientoCreate, AsientoRead
from services.registro.oficinas import service as oficinas
from services.registro.oficinas.domain import MAX_SECUENCIA_OFICINA, format_numero_oficina

__all__ = [
    "ASIENTO_ANULADO",
    "ASIENTO_REGISTRADO",
    "admite_registro_directo",
    "anular_asiento",
    "count_query",
    "consultar_asiento",
    "listar_asientos",
    "page_query",
    "registrar_asiento",
    "registrar_asiento_directo",
]

ASIENTO_REGISTRADO = "registro.asiento.registrado.v1"
ASIENTO_ANULADO = "registro.asiento.anulado.v1"

_log = logging.getLogger("consistorio.registro")


async def registrar_asiento(
    uow: UnitOfWork,
    *,
    data: AsientoCreate,
    canal: domain.Canal = domain.Canal.PRESENCIAL,
    now: datetime | None = None,
    limites: Limites | None = None,
    anexos_recibidos: Sequence[AnexoSicres] = (),
) -> AsientoRead:
    """Registers an asiento: takes its gapless number, stores it, audits it, emits the event.

    The date-time is the server's, never the client's. A correction names the asiento
    it corrects, which must be one of this entity's (422 naming ``corrige`` otherwise).
    Its anexos (``data.anexos``, or those of an accepted exchange) go to the repositorio
    in the same transaction (see the anexos package); the asiento records what they are.
    """
    if data.corrige is not None:
        await asiento_corregido(uow.session, tenant_id=uow.tenant_id, asiento_id=data.corrige)
    fecha = now or datetime.now(UTC)
    if not anexos_recibidos and not data.anexos:
        # The common case: nothing else carries the number, so it is taken in the same
        # statement that writes the asiento, its audit entry and its event.
        return await _registrar_en_una_sentencia(uow, data=data, canal=canal, fecha=fecha)
    numeracion = await oficinas.numerar(uow, tipo=data.tipo, oficina=data.oficina, fecha=fecha)
    row = _fila(uow, data, canal, fecha, numeracion.anio)
    row.update(secuencia=numeracion.secuencia, numero=numeracion.numero)
    if anexos_recibidos:
        guardados = await anexos.guardar_anexos_recibidos(
            uow,
            asiento_id=row["id"],
            numero=row["numero"],
            anexos=anexos_recibidos,
            limites=limites,
        )
    else:
        guardados = await anexos.guardar_anexos(
            uow,
            asiento_id=row["id"],
            numero=row["numero"],
            tipo=data.tipo,
            anexos=data.anexos,
            limites=limites,
        )
    row["anexos"] = [a.model_dump(mode="json") for a in guardados]
    uow.add(asientos, row)
    asiento = AsientoRead.model_validate(row)
    snapshot = asiento.model_dump(mode="json")
    uow.audit(action="registrar", entity="asiento", entity_id=asiento.id, new=snapshot)
    uow.emit(ASIENTO_REGISTRADO, _evento(asiento, snapshot), subject=asiento.numero)
    return asiento


def admite_registro_directo(data: AsientoCreate) -> bool:
    """Whether :func:`registrar_asiento_directo` can register ``data``: an asiento that
    carries no anexos and corrects none (the others need more than one statement)."""
    return not data.anexos and data.corrige is None


async def registrar_asiento_directo(
    uow: LeanUnitOfWork,
    *,
    data: AsientoCreate,
    canal: domain.Canal = domain.Canal.PRESENCIAL,
    now: datetime | None = None,
) -> AsientoRead:
    """registrar_asiento on the hot path (raw asyncpg, see services.common.lean), for an
    asiento :func:`admite_registro_directo` accepts: the same checks, rows, audit entry
    and event. ``uow`` has taken ``oficinas.BLOQUEO_NUMERACION`` first."""
    assert admite_registro_directo(data), "an asiento with anexos or corrige needs the ORM"
    fecha = now or datetime.now(UTC)
    return await _registrar_en_una_sentencia(uow, data=data, canal=canal, fecha=fecha)


async def _registrar_en_una_sentencia(
    uow: UnitOfWork | LeanUnitOfWork, *, data: AsientoCreate, canal: domain.Canal, fecha: datetime
) -> AsientoRead:
    """registrar_asiento for an asiento without anexos: one statement takes the number
    and writes the asiento, its audit entry and its event (see UnitOfWork.add_numbered)."""
    plan = await oficinas.planificar_numeracion(
        uow, tipo=data.tipo, oficina=data.oficina, fecha=fecha
    )
    # The number of sequence 1 stands in while the rows are built and checked; its
    # digits are the sequence's, so what precedes them is the series' prefix.
    if plan.prefijo_oficina is not None:
        muestra = format_numero_oficina(data.tipo, plan.anio, plan.prefijo_oficina, 1)
        maximo: int | None = MAX_SECUENCIA_OFICINA
    else:
        muestra = domain.format_numero(data.tipo, plan.anio, 1)
        maximo = None
    row = _fila(uow, data, canal, fecha, plan.anio)
    row["anexos"] = []
    provisional = AsientoRead.model_validate({**row, "secuencia": 1, "numero": muestra})
    snapshot = provisional.model_dump(mode="json")
    secuencia, numero = await uow.add_numbered(
        asientos,
        row,
        numbering=Numbering(serie=plan.serie, anio=plan.anio, prefix=muestra[:-6], maximum=maximo),
        audit=NumberedAudit("registrar", "asiento", provisional.id, snapshot),
        event=NumberedEvent(ASIENTO_REGISTRADO, _evento(provisional, snapshot)),
    )
    return provisional.model_copy(update={"secuencia": secuencia, "numero": numero})


def _fila(
    uow: UnitOfWork | LeanUnitOfWork,
    data: AsientoCreate,
    canal: domain.Canal,
    fecha: datetime,
    anio: int,
) -> dict[str, Any]:
    """The asiento's row, but for its number and its anexos."""
    return {
        **data.model_dump(mode="json", exclude={"tipo", "interesados", "anexos"}),
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "tipo": data.tipo.value,
        "anio": anio,
        "fecha_registro": fecha,
        "canal": canal.value,
        "interesados": [i.model_dump(mode="json", exclude_none=True) for i in data.interesados],
        "registrado_por": uow.actor.sub,
    }


def _evento(asiento: AsientoRead, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The data of registro.asiento.registrado.v1 for an asiento."""
    return {
        "asiento_id": asiento.id,
        "numero": asiento.numero,
        "tipo": asiento.tipo.value,
        "anio": asiento.anio,
        "secuencia": asiento.secuencia,
        "fecha_registro": snapshot["fecha_registro"],
        "resumen": asiento.resumen,
        "unidad_destino": asiento.unidad_destino,
        "procedimiento": asiento.procedimiento,
        "interesados": [_interesado_evento(i) for i in snapshot["interesados"]],
        **{campo: snapshot[campo] for campo in _CAMPOS_EVENTO if snapshot[campo] is not None},
        "anexos": [
            {k: v for k, v in anexo.items() if k in _CAMPOS_ANEXO_EVENTO and v is not None}
            for anexo in snapshot["anexos"]
        ],
    }


# Optional fields of registro.asiento.registrado.v1 added in its minor 1.1.
_CAMPOS_EVENTO = (
    "canal",
    "oficina",
    "origen",
    "entidad_registral_destino",
    "codigo_asunto",
    "referencia_externa",
    "numero_expediente",
    "documentacion_fisica",
    "corrige",
)


# What a backoffice needs of each anexo to fetch it and trust it (not its signature bytes).
_CAMPOS_ANEXO_EVENTO = frozenset(
    {
        "identificador_fichero",
        "documento_id",
        "version",
        "nombre",
        "tipo_mime",
        "tamano",
        "sha256",
        "validez",
        "tipo_documento",
        "sin_contenido",
    }
)


def _interesado_evento(interesado: dict[str, Any]) -> dict[str, Any]:
    """An interesado as the event carries it: ``nombre`` is the razón social of an entity,
    as the shared interesado contract has always said."""
    evento = {k: v for k, v in interesado.items() if v is not None}
    if evento.get("nombre") is None:
        evento["nombre"] = interesado["razon_social"]
    return evento


async def asiento_corregido(
    session: AsyncSession, *, tenant_id: str, asiento_id: str, registrado_por: str | None = None
) -> None:
    """The asiento a correction cites must be this entity's (and, for a citizen, theirs)."""
    try:
        await consultar_asiento(
            session, tenant_id=tenant_id, asiento_id=asiento_id, registrado_por=registrado_por
        )
    except NotFound:
        raise Unprocessable(
            "Datos no válidos: corrige",
            errors=[FieldError("corrige", f"no existe el asiento {asiento_id} en esta entidad")],
        ) from None


def _con_anulacion() -> Select[Any]:
    """Asientos with their annulment, if any: the estado is derived, never stored."""
    return select(
        asientos,
        anulaciones.c.motivo.label("anulacion_motivo"),
        anulaciones.c.anulado_por.label("anulacion_por"),
        anulaciones.c.anulado_en.label("anulacion_en"),
    ).select_from(asientos.outerjoin(anulaciones, anulaciones.c.asiento_id == asientos.c.id))


# The label of the window count a content search adds to its page query.
_TOTAL = "total_coincidencias"


def _asiento_read(row: Any) -> AsientoRead:
    """An asiento row with its annulment columns, as the API shows it."""
    data = dict(row._mapping)
    data.pop(_TOTAL, None)
    motivo = data.pop("anulacion_motivo")
    por = data.pop("anulacion_por")
    en = data.pop("anulacion_en")
    if motivo is not None:
        data["estado"] = EstadoAsiento.ANULADO
        data["anulacion"] = {"motivo": motivo, "anulado_por": por, "anulado_en": en}
    return AsientoRead.model_validate(data)


async def consultar_asiento(
    session: AsyncSession, *, tenant_id: str, asiento_id: str, registrado_por: str | None = None
) -> AsientoRead:
    """One asiento of the tenant; another tenant's (or a malformed id) is a 404.

    With ``registrado_por`` (a citizen reading through the sede) only an asiento that
    person presented is found; anybody else's is a 404 as well.
    """
    try:
        uuid.UUID(asiento_id)
    except ValueError:
        raise NotFound(f"No existe el asiento {asiento_id}.") from None
    query = _con_anulacion().where(asientos.c.tenant_id == tenant_id, asientos.c.id == asiento_id)
    if registrado_por is not None:
        query = query.where(asientos.c.registrado_por == registrado_por)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe el asiento {asiento_id}.")
    return _asiento_read(row)


async def anular_asiento(
    uow: UnitOfWork, *, asiento_id: str, data: AnulacionCreate, now: datetime | None = None
) -> AsientoRead:
    """Annuls an asiento: it stays in the book with its number, marked annulled.

    The annulment row is written at once (not deferred) with ON CONFLICT DO
    NOTHING: of two concurrent annulments the second waits for the first and
    then finds the row, so it is a 409 rather than a failed commit.
    """
    asiento = await consultar_asiento(uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id)
    if asiento.estado is EstadoAsiento.ANULADO:
        raise Conflict(f"El asiento {asiento.numero} ya está anulado.")
    anulado_en = now or datetime.now(UTC)
    inserted = await uow.session.execute(
        pg_insert(anulaciones)
        .values(
            asiento_id=asiento.id,
            tenant_id=uow.tenant_id,
            motivo=data.motivo,
            anulado_por=uow.actor.sub,
            anulado_en=anulado_en,
        )
        .on_conflict_do_nothing()
        .returning(anulaciones.c.asiento_id)
    )
    if inserted.first() is None:
        raise Conflict(f"El asiento {asiento.numero} ya está anulado.")
    anulado = AsientoRead.model_validate(
        {
            **asiento.model_dump(),
            "estado": EstadoAsiento.ANULADO,
            "anulacion": {
                "motivo": data.motivo,
                "anulado_por": uow.actor.sub,
                "anulado_en": anulado_en,
            },
        }
    )
    snapshot = anulado.model_dump(mode="json")
    uow.audit(
        action="anular",
        entity="asiento",
        entity_id=asiento.id,
        old=asiento.model_dump(mode="json"),
        new=snapshot,
    )
    uow.emit(
        ASIENTO_ANULADO,
        {
            "asiento_id": asiento.id,
            "numero": asiento.numero,
            "tipo": asiento.tipo.value,
            "anio": asiento.anio,
            "secuencia": asiento.secuencia,
            "motivo": data.motivo,
            "anulado_por": uow.actor.sub,
            "anulado_en": snapshot["anulacion"]["anulado_en"],
        },
        subject=asiento.numero,
    )
    return anulado


def _contiene(campo: str, valor: str) -> ColumnElement[bool]:
    """The asiento is among those whose ``campo`` matches ``valor`` (index-backed)."""
    return asientos.c.id.in_(select(func.registro.asientos_que_contienen(campo, valor)))


def _conditions(tenant_id: str, filtros: Filtros) -> list[ColumnElement[bool]]:
    """The WHERE of a search; each filter is written so that an index answers it."""
    where: list[ColumnElement[bool]] = [asientos.c.tenant_id == tenant_id]
    if filtros.numero is not None:
        where.append(asientos.c.numero == filtros.numero)
    if filtros.desde is not None:
        where.append(asientos.c.fecha_registro >= filtros.desde)
    if filtros.hasta is not None:
        where.append(asientos.c.fecha_registro < filtros.hasta)
    if filtros.tipo is not None:
        where.append(asientos.c.tipo == filtros.tipo)
    if filtros.unidad is not None:
        where.append(asientos.c.unidad_destino == filtros.unidad)
    if filtros.oficina is not None:
        where.append(asientos.c.oficina == filtros.oficina)
    if filtros.corrige is not None:
        where.append(asientos.c.corrige == filtros.corrige)
    if filtros.registrado_por is not None:
        where.append(asientos.c.registrado_por == filtros.registrado_por)
    # Under RLS only leakproof operators may use an index, and @> and LIKE are not:
    # these searches go through the migration's SECURITY DEFINER function, which
    # applies the tenant condition itself (see migration registro_0003).
    termino = filtros.interesado
    if termino is not None and termino.identificador is not None:
        where.append(_contiene("identificador", termino.identificador))
    elif termino is not None and termino.nombre is not None:
        where.append(_contiene("nombre", like_contains(termino.nombre)))
    if filtros.q is not None:
        where.append(_contiene("resumen", like_contains(filtros.q)))
    if filtros.estado is EstadoAsiento.ANULADO:
        where.append(anulaciones.c.asiento_id.is_not(None))
    elif filtros.estado is EstadoAsiento.REGISTRADO:
        where.append(anulaciones.c.asiento_id.is_(None))
    return where


def count_query(tenant_id: str, filtros: Filtros) -> Select[Any]:
    """How many asientos match ``filtros`` (only for page-number pagination)."""
    joined = asientos.outerjoin(anulaciones, anulaciones.c.asiento_id == asientos.c.id)
    return select(func.count()).select_from(joined).where(*_conditions(tenant_id, filtros))


def page_query(
    tenant_id: str, filtros: Filtros, *, size: int, page: int = 1, cursor: Cursor | None = None
) -> Select[Any]:
    """One page of matches plus one row (to know whether another page follows).

    The order (fecha_registro, id) descending is the order of the index
    (tenant_id, fecha_registro DESC, id DESC); the cursor is a keyset on it.
    """
    query = _con_anulacion().where(*_conditions(tenant_id, filtros))
    if cursor is not None:
        query = query.where(
            tuple_(asientos.c.fecha_registro, asientos.c.id)
            < tuple_(
                literal(cursor.fecha_registro, asientos.c.fecha_registro.type),
                literal(cursor.id, asientos.c.id.type),
            )
        )
    else:
        query = query.offset((page - 1) * size)
    return query.order_by(asientos.c.fecha_registro.desc(), asientos.c.id.desc()).limit(size + 1)


async def listar_asientos(
    session: AsyncSession,
    *,
    tenant_id: str,
    filtros: Filtros,
    size: int,
    page: int = 1,
    cursor: Cursor | None = None,
) -> tuple[list[AsientoRead], int | None, Cursor | None]:
    """A page of the tenant's asientos matching ``filtros``, newest first.

    Answers the items, the total (None with a cursor: counting a large register on
    every page is what the cursor avoids) and the cursor of the next page (None
    on the last one).
    """
    total: int | None = None
    query = page_query(tenant_id, filtros, size=size, page=page, cursor=cursor)
    if cursor is None and filtros.por_contenido:
        # A text or name search computes its set of matches once (a trigram scan):
        # the window count rides on the page query instead of a second scan.
        query = query.add_columns(func.count().over().label(_TOTAL))
        rows = (await session.execute(query)).all()
        if rows:
            total = int(rows[0]._mapping[_TOTAL])
    else:
        rows = (await session.execute(query)).all()
    if cursor is None and total is None:
        total = int((await session.execute(count_query(tenant_id, filtros))).scalar_one())
    items = [_asiento_read(r) for r in rows[:size]]
    siguiente = None
    if len(rows) > size:
        siguiente = Cursor(items[-1].fecha_registro, items[-1].id)
    return items, total, siguiente


# --- justificantes -------------------------------------------------------------------------------
