"""Use cases of the registro, one transaction each."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.consumer import PermanentFailure
from services.common.bus.envelope import ReceivedEvent
from services.common.errors import Conflict, FieldError, Forbidden, NotFound, Unprocessable
from services.common.tenants import Tenant, tenants_table
from services.common.uow import UnitOfWork
from services.registro import anexos, domain, justificante, oficinas, representaciones, sede
from services.registro.busqueda import Cursor, EstadoAsiento, Filtros, like_contains
from services.registro.justificante import EstadoJustificante
from services.registro.models import anulaciones, asientos, justificantes
from services.registro.schemas import (
    AnulacionCreate,
    AsientoCreate,
    AsientoRead,
    JustificanteRead,
)

if TYPE_CHECKING:  # sicres imports the schemas too; only its type is needed here
    from services.registro.sicres import AnexoSicres

__all__ = [
    "ASIENTO_ANULADO",
    "ASIENTO_REGISTRADO",
    "DOCUMENTO_EMITIDO",
    "EMISION_FALLIDA",
    "EMITIR_DOCUMENTO",
    "annul_asiento",
    "count_query",
    "get_asiento",
    "get_justificante",
    "list_asientos",
    "page_query",
    "record_emision_fallida",
    "record_justificante_emitido",
    "register_asiento",
    "request_justificante",
    "retry_justificante",
]

ASIENTO_REGISTRADO = "registro.asiento.registrado.v1"
ASIENTO_ANULADO = "registro.asiento.anulado.v1"
EMITIR_DOCUMENTO = "repositorio.documento.emitir.v1"
DOCUMENTO_EMITIDO = "repositorio.documento.emitido.v1"
EMISION_FALLIDA = "repositorio.emision.fallida.v1"

_log = logging.getLogger("consistorio.registro")


async def register_asiento(
    uow: UnitOfWork,
    *,
    data: AsientoCreate,
    canal: domain.Canal = domain.Canal.PRESENCIAL,
    now: datetime | None = None,
    limites: anexos.Limites | None = None,
    anexos_recibidos: Sequence[AnexoSicres] = (),
) -> AsientoRead:
    """Registers an asiento: takes its gapless number, stores it, audits it, emits the event.

    The date-time is the server's, never the client's. A correction names the asiento
    it corrects, which must be one of this entity's (422 naming ``corrige`` otherwise).
    Its anexos (``data.anexos``, or those of an accepted exchange) go to the repositorio
    in the same transaction (see anexos.py); the asiento records what they are.
    """
    if data.corrige is not None:
        await _asiento_corregido(uow.session, tenant_id=uow.tenant_id, asiento_id=data.corrige)
    fecha = now or datetime.now(UTC)
    numeracion = await oficinas.numerar(uow, tipo=data.tipo, oficina=data.oficina, fecha=fecha)
    row: dict[str, Any] = {
        **data.model_dump(mode="json", exclude={"tipo", "interesados", "anexos"}),
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "tipo": data.tipo.value,
        "anio": numeracion.anio,
        "secuencia": numeracion.secuencia,
        "numero": numeracion.numero,
        "fecha_registro": fecha,
        "canal": canal.value,
        "interesados": [i.model_dump(mode="json", exclude_none=True) for i in data.interesados],
        "registrado_por": uow.actor.sub,
    }
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
            "interesados": [_interesado_evento(i) for i in snapshot["interesados"]],
            **{campo: snapshot[campo] for campo in _CAMPOS_EVENTO if snapshot[campo] is not None},
            "anexos": [
                {k: v for k, v in anexo.items() if k in _CAMPOS_ANEXO_EVENTO and v is not None}
                for anexo in snapshot["anexos"]
            ],
        },
        subject=asiento.numero,
    )
    return asiento


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


async def _asiento_corregido(
    session: AsyncSession, *, tenant_id: str, asiento_id: str, registrado_por: str | None = None
) -> None:
    """The asiento a correction cites must be this entity's (and, for a citizen, theirs)."""
    try:
        await get_asiento(
            session, tenant_id=tenant_id, asiento_id=asiento_id, registrado_por=registrado_por
        )
    except NotFound:
        raise Unprocessable(
            "Datos no válidos: corrige",
            errors=[FieldError("corrige", f"no existe el asiento {asiento_id} en esta entidad")],
        ) from None


async def register_asiento_ciudadano(
    uow: UnitOfWork,
    *,
    data: AsientoCreate,
    nif: str | None,
    limites: anexos.Limites | None = None,
) -> AsientoRead:
    """A citizen presents an asiento through the sede: electrónico, as themselves or for
    someone they represent on record (Ley 39/2015, art. 5 and 16).

    Fields only a desk uses are a 422; an interesado the citizen neither is nor
    represents, or represents without a recorded representation in force, is a 403.
    """
    if nif is None:
        raise Forbidden(
            "El token no acredita un NIF o NIE (claim 'nif'): no se puede presentar por la sede."
        )
    if data.oficina is None:
        # What the sede presents is registered in the entity's oficina electrónica.
        electronica = await oficinas.oficina_electronica(uow.session, tenant_id=uow.tenant_id)
        if electronica is not None:
            data = data.model_copy(update={"oficina": electronica})
    verdict = sede.comprobar_presentacion(nif, data)
    if verdict.invalidos:
        raise Unprocessable(
            "Datos no válidos para una presentación electrónica.",
            errors=[FieldError(campo, motivo) for campo, motivo in verdict.invalidos],
        )
    vigentes = await representaciones.representados_por(
        uow.session,
        tenant_id=uow.tenant_id,
        representante=nif,
        poderdantes=set(verdict.poderdantes),
    )
    ajenos = list(verdict.ajenos)
    for poderdante, posiciones in verdict.poderdantes.items():
        if poderdante not in vigentes:
            ajenos += [
                (
                    f"interesados[{n}]",
                    f"no consta en este registro una representación vigente de {poderdante} "
                    f"a favor de {nif}",
                )
                for n in posiciones
            ]
    if ajenos:
        raise Forbidden(
            "Solo puede presentar en su propio nombre o como representante acreditado.",
            errors=[FieldError(campo, motivo) for campo, motivo in sorted(ajenos)],
        )
    if data.corrige is not None:
        await _asiento_corregido(
            uow.session,
            tenant_id=uow.tenant_id,
            asiento_id=data.corrige,
            registrado_por=uow.actor.sub,
        )
    return await register_asiento(uow, data=data, canal=domain.Canal.ELECTRONICO, limites=limites)


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


async def get_asiento(
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


async def annul_asiento(
    uow: UnitOfWork, *, asiento_id: str, data: AnulacionCreate, now: datetime | None = None
) -> AsientoRead:
    """Annuls an asiento: it stays in the book with its number, marked annulled.

    The annulment row is written at once (not deferred) with ON CONFLICT DO
    NOTHING: of two concurrent annulments the second waits for the first and
    then finds the row, so it is a 409 rather than a failed commit.
    """
    asiento = await get_asiento(uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id)
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


async def list_asientos(
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


def _uuid_or_none(value: Any) -> str | None:
    """A uuid from another service's event, or None: a bad id must not fail the query."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


async def _entidad(session: AsyncSession, tenant_id: str) -> Tenant | None:
    """The entity as the tenant registry knows it (its name and DIR3 go on the receipt)."""
    row = (
        await session.execute(select(tenants_table).where(tenants_table.c.ine_code == tenant_id))
    ).first()
    return Tenant(row.ine_code, row.nombre, row.dir3, row.activo) if row else None


async def _justificante_row(
    session: AsyncSession, *, asiento_id: str, for_update: bool = False
) -> dict[str, Any] | None:
    query = select(justificantes).where(justificantes.c.asiento_id == asiento_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return dict(row._mapping) if row else None


async def _solicitar_emision(
    uow: UnitOfWork, *, asiento: AsientoRead, entidad: Tenant, intento: int
) -> str:
    """Renders the justificante and asks the repositorio to issue it; answers the request id."""
    # Rendering takes tens of milliseconds of CPU: off the event loop, so requests go on.
    pdf = await asyncio.to_thread(justificante.render_justificante, asiento, entidad)
    solicitud = justificante.solicitud_id(asiento.id, intento)
    uow.emit(
        EMITIR_DOCUMENTO,
        {
            "solicitud_id": solicitud,
            "solicitante": justificante.SOLICITANTE,
            "nombre_fichero": justificante.nombre_fichero(asiento.numero),
            "pdf": base64.b64encode(pdf).decode("ascii"),
            "metadatos": {
                "organo": entidad.dir3,
                "origen": justificante.ORIGEN,
                "estado_elaboracion": justificante.ESTADO_ELABORACION,
                "tipo_documental": justificante.TIPO_DOCUMENTAL,
            },
            "referencia": {"tipo": "asiento", "id": asiento.id, "numero": asiento.numero},
        },
        subject=asiento.numero,
    )
    return solicitud


def _audit_justificante(
    uow: UnitOfWork, action: str, row: dict[str, Any], changes: dict[str, Any]
) -> JustificanteRead:
    """Audits a change of a justificante's state; answers the state after it."""
    old = JustificanteRead.model_validate(row)
    new = JustificanteRead.model_validate({**row, **changes})
    uow.audit(
        action=action,
        entity="justificante",
        entity_id=str(row["asiento_id"]),
        old=old.model_dump(mode="json"),
        new=new.model_dump(mode="json"),
    )
    return new


async def request_justificante(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A registered asiento gets its justificante: render it, ask the repositorio to issue it.

    The pending row and the command commit together, so an answer from the
    repositorio always finds the row it refers to.
    """
    asiento_id = str(event.data["asiento_id"])
    try:
        asiento = await get_asiento(uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id)
    except NotFound as exc:
        raise PermanentFailure(f"el asiento {asiento_id} no existe en el registro") from exc
    if await _justificante_row(uow.session, asiento_id=asiento.id) is not None:
        _log.info("justificante of asiento %s already requested; skipped", asiento.numero)
        return
    entidad = await _entidad(uow.session, uow.tenant_id)
    if entidad is None:
        raise PermanentFailure(f"la entidad {uow.tenant_id} no está en el registro de entidades")
    await _primera_solicitud(uow, asiento=asiento, entidad=entidad)


async def _primera_solicitud(
    uow: UnitOfWork, *, asiento: AsientoRead, entidad: Tenant
) -> JustificanteRead:
    """The first request for an asiento's justificante, and its pending row."""
    solicitud = await _solicitar_emision(uow, asiento=asiento, entidad=entidad, intento=1)
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "asiento_id": asiento.id,
        "tenant_id": uow.tenant_id,
        "estado": EstadoJustificante.PENDIENTE.value,
        "intento": 1,
        "solicitud_id": solicitud,
        "solicitado_en": now,
        "actualizado_en": now,
    }
    # The consumer and a staff member's retry may race for the first request: both
    # send the same solicitud id, and the repositorio answers each solicitud once.
    uow.defer(pg_insert(justificantes).values(**row).on_conflict_do_nothing())
    return JustificanteRead.model_validate(row)


async def record_justificante_emitido(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The repositorio issued a document: if it is the justificante we asked for, record it."""
    data = event.data
    referencia = data.get("referencia") or {}
    asiento_id = _uuid_or_none(referencia.get("id"))
    solicitud = _uuid_or_none(data.get("solicitud_id"))
    if referencia.get("tipo") != "asiento" or asiento_id is None or solicitud is None:
        return
    if data.get("solicitante", justificante.SOLICITANTE) != justificante.SOLICITANTE:
        return
    row = (
        await uow.session.execute(
            select(justificantes)
            .where(
                justificantes.c.asiento_id == asiento_id,
                justificantes.c.solicitud_id == solicitud,
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        # A document about an asiento that is not this register's request: not ours.
        _log.info(
            "documento %s refers to asiento %s: no such request",
            data["documento_id"],
            referencia.get("id"),
        )
        return
    if row.estado == EstadoJustificante.EMITIDO.value:
        return
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        "estado": EstadoJustificante.EMITIDO.value,
        "documento_id": str(data["documento_id"]),
        "version": int(data["version"]),
        "csv": str(data["csv"]),
        "url_verificacion": str(data["url_verificacion"]),
        "emitido_en": datetime.fromisoformat(str(data["emitido_en"])),
        "motivo": None,
        "codigo": None,
        "actualizado_en": now,
    }
    uow.defer(
        update(justificantes).where(justificantes.c.asiento_id == row.asiento_id).values(**changes)
    )
    _audit_justificante(uow, "emitir-justificante", dict(row._mapping), changes)


async def record_emision_fallida(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The repositorio could not issue a document: if it was our justificante, say why."""
    data = event.data
    solicitud = _uuid_or_none(data.get("solicitud_id"))
    if solicitud is None:
        return
    if data.get("solicitante", justificante.SOLICITANTE) != justificante.SOLICITANTE:
        return
    row = (
        await uow.session.execute(
            select(justificantes).where(justificantes.c.solicitud_id == solicitud).with_for_update()
        )
    ).first()
    if row is None or row.estado != EstadoJustificante.PENDIENTE.value:
        return
    changes: dict[str, Any] = {
        "estado": EstadoJustificante.FALLIDO.value,
        "motivo": str(data["motivo"]),
        "codigo": str(data["codigo"]),
        "actualizado_en": datetime.now(UTC),
    }
    uow.defer(
        update(justificantes).where(justificantes.c.asiento_id == row.asiento_id).values(**changes)
    )
    _audit_justificante(uow, "fallar-justificante", dict(row._mapping), changes)


async def get_justificante(
    session: AsyncSession, *, tenant_id: str, asiento_id: str, registrado_por: str | None = None
) -> JustificanteRead | None:
    """Where an asiento's justificante stands; None while it has not been asked for yet.

    Another tenant's asiento (or a malformed id) is a 404, as for the asiento itself.
    """
    await get_asiento(
        session, tenant_id=tenant_id, asiento_id=asiento_id, registrado_por=registrado_por
    )
    row = await _justificante_row(session, asiento_id=asiento_id)
    return JustificanteRead.model_validate(row) if row else None


async def retry_justificante(
    uow: UnitOfWork, *, asiento_id: str, stalled_before: datetime | None = None
) -> JustificanteRead:
    """Asks again for a justificante whose issuing failed or stalled, as a new request.

    An asiento with no request at all (registered before justificantes existed)
    gets its first one here. A pending request asked for before ``stalled_before``
    has stalled (its answer is not coming) and may be asked for again too.
    """
    asiento = await get_asiento(uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id)
    row = await _justificante_row(uow.session, asiento_id=asiento.id, for_update=True)
    if (
        row is not None
        and row["estado"] == EstadoJustificante.PENDIENTE.value
        and (stalled_before is None or row["solicitado_en"] >= stalled_before)
    ):
        raise Conflict(f"El justificante del asiento {asiento.numero} ya se está emitiendo.")
    if row is not None and row["estado"] == EstadoJustificante.EMITIDO.value:
        raise Conflict(f"El justificante del asiento {asiento.numero} ya está emitido.")
    entidad = await _entidad(uow.session, uow.tenant_id)
    if entidad is None:
        raise Conflict(f"La entidad {uow.tenant_id} no está en el registro de entidades.")
    if row is None:
        nuevo = await _primera_solicitud(uow, asiento=asiento, entidad=entidad)
        uow.audit(
            action="solicitar-justificante",
            entity="justificante",
            entity_id=asiento.id,
            new=nuevo.model_dump(mode="json"),
        )
        return nuevo
    intento = int(row["intento"]) + 1
    solicitud = await _solicitar_emision(uow, asiento=asiento, entidad=entidad, intento=intento)
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        "estado": EstadoJustificante.PENDIENTE.value,
        "intento": intento,
        "solicitud_id": solicitud,
        "solicitado_en": now,
        "motivo": None,
        "codigo": None,
        "actualizado_en": now,
    }
    uow.defer(
        update(justificantes).where(justificantes.c.asiento_id == asiento.id).values(**changes)
    )
    return _audit_justificante(uow, "reintentar-justificante", row, changes)
