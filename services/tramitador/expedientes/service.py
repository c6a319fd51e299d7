"""Use cases of the expedientes, one transaction each: open (from an asiento or de
oficio), read with the caller's actions, act, settle answers and expire plazos."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.errors import Conflict, FieldError, NotFound, Unprocessable
from services.common.uow import UnitOfWork
from services.tramitador.calendario.domain import Calendario, dia_de_computo, dias_habiles_entre
from services.tramitador.calendario.service import calendario_de
from services.tramitador.documentos import service as documentos_service
from services.tramitador.documentos.models import documentos
from services.tramitador.documentos.schemas import DocumentoAdjunto, DocumentoRead
from services.tramitador.expedientes import domain, motor
from services.tramitador.expedientes.domain import EstadoPlazo, TipoPlazo
from services.tramitador.expedientes.models import (
    expedientes,
    historial,
    incidencias,
    plazos,
    tramites,
)
from services.tramitador.expedientes.schemas import (
    AccionRead,
    ExpedienteCreate,
    ExpedienteDetalle,
    ExpedienteRead,
    HistorialRead,
    IncidenciaRead,
    IncidenciaResolver,
    PlazoRead,
    TramiteRead,
)
from services.tramitador.procedimientos.service import definicion_de, version_vigente

__all__ = [
    "EXPEDIENTE_INICIADO",
    "abrir_expediente_de_oficio",
    "abrir_expediente_por_asiento",
    "atender_respuesta",
    "adjuntar_documento",
    "consultar_expediente",
    "documento_emitido",
    "listar_expedientes",
    "realizar_accion",
    "registrar_incidencia",
    "resolver_incidencia",
    "vencer_plazo",
]

EXPEDIENTE_INICIADO = "tramitador.expediente.iniciado.v1"
NOTIFICACION_PRACTICADA = "notificaciones.notificacion.practicada.v1"
_log = logging.getLogger("consistorio.tramitador")


def _nombre(interesado: dict[str, Any]) -> str:
    partes = (interesado.get("nombre"), interesado.get("apellido1"), interesado.get("apellido2"))
    return " ".join(p for p in partes if p)[:300]


async def _abrir(
    uow: UnitOfWork,
    *,
    procedimiento: str,
    iniciacion: str,
    interesados: list[dict[str, Any]],
    asunto: str | None,
    fecha: datetime,
    anio: int,
    asiento: dict[str, Any] | None,
) -> ExpedienteRead | None:
    session = uow.session
    vigente = await version_vigente(session, tenant_id=uow.tenant_id, codigo=procedimiento)
    if vigente is None:
        return None
    version, definicion = vigente
    if iniciacion not in definicion.data["iniciacion"]:
        raise Unprocessable(
            f"El procedimiento {procedimiento} no se inicia de {iniciacion}.",
            errors=[
                FieldError("procedimiento", f"iniciación admitida: {definicion.data['iniciacion']}")
            ],
        )
    secuencia = await uow.next_number(domain.SERIE_EXPEDIENTES, anio)
    primero = interesados[0] if interesados else {}
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "anio": anio,
        "secuencia": secuencia,
        "numero": domain.format_numero(anio, secuencia),
        "procedimiento": procedimiento,
        "procedimiento_version": version,
        "estado": domain.EstadoExpediente.INICIADO.value,
        "fase": definicion.fase_inicial,
        "iniciacion": iniciacion,
        "unidad": definicion.data.get("unidad_tramitadora"),
        "asunto": asunto,
        "asiento_id": asiento["asiento_id"] if asiento else None,
        "asiento_numero": asiento["numero"] if asiento else None,
        "fecha_inicio": fecha,
        "interesados": interesados,
        "interesado_id": primero.get("identificador"),
        "interesado_nombre": _nombre(primero) or None,
        # The asiento is the solicitud itself (art. 66); other documents are checked.
        "documentos_aportados": ["solicitud"] if asiento else [],
        "tasas_pagadas": [],
        "propuesta": None,
        "resolucion": None,
        "silencio": None,
        "espera_evento": None,
        "espera_solicitud": None,
        "plazo_ampliado": False,
    }
    await session.execute(insert(expedientes).values(**row))
    calendario = await calendario_de(session, tenant_id=uow.tenant_id, interesados=interesados)
    ctx = motor.Contexto(uow, dict(row), definicion, calendario, motor.hoy_de(uow.tenant_id))
    # Art. 21.3: the resolution plazo runs from the entry in the register (solicitud) or
    # from the acuerdo de inicio (de oficio); a presentation on an inhábil day counts
    # from the next hábil one (art. 31.2.b).
    desde = dia_de_computo(fecha, uow.tenant_id, calendario)
    await motor.abrir_plazo(
        ctx, TipoPlazo.RESOLUCION, definicion.data["plazo_resolucion"], desde=desde, al_vencer=None
    )
    await motor.entrar_en_fase(ctx, definicion.fase_inicial, accion=None)
    await ctx.guardar()
    expediente = ExpedienteRead.model_validate(ctx.row)
    uow.audit(
        action="iniciar",
        entity="expediente",
        entity_id=expediente.id,
        new=expediente.model_dump(mode="json"),
    )
    uow.add(
        historial,
        {
            "tenant_id": uow.tenant_id,
            "expediente_id": expediente.id,
            "actor": uow.actor.sub,
            "accion": "iniciar",
            "fase_desde": None,
            "fase_hacia": definicion.fase_inicial,
            "datos": {"iniciacion": iniciacion, "asiento": row["asiento_numero"]},
        },
    )
    return expediente


async def abrir_expediente_por_asiento(
    uow: UnitOfWork, event: ReceivedEvent
) -> ExpedienteRead | None:
    """Opens the expediente an asiento de entrada asks for, if its procedure is published."""
    asiento = event.data
    codigo = asiento.get("procedimiento")
    if asiento["tipo"] != "entrada" or codigo is None:
        _log.info("asiento %s opens no expediente", asiento["numero"])
        return None
    fecha = (
        datetime.fromisoformat(asiento["fecha_registro"])
        if asiento.get("fecha_registro")
        else datetime.now(UTC)
    )
    vigente = await version_vigente(uow.session, tenant_id=uow.tenant_id, codigo=codigo)
    if vigente is not None and "solicitud" not in vigente[1].data["iniciacion"]:
        # A procedure that only starts de oficio (art. 58): the asiento stays in the
        # register, for staff to decide on; it is no error of the bus message.
        _log.info("asiento %s names %s, which starts only de oficio", asiento["numero"], codigo)
        return None
    expediente = await _abrir(
        uow,
        procedimiento=codigo,
        iniciacion="solicitud",
        interesados=asiento["interesados"],
        asunto=asiento.get("resumen"),
        fecha=fecha,
        anio=int(asiento["anio"]),
        asiento=asiento,
    )
    if expediente is None:
        _log.info("asiento %s names no published procedure %s", asiento["numero"], codigo)
        return None
    _anunciar_inicio(uow, expediente, iniciacion="solicitud")
    return expediente


def _anunciar_inicio(uow: UnitOfWork, expediente: ExpedienteRead, *, iniciacion: str) -> None:
    """``tramitador.expediente.iniciado.v1``, in the transaction that opened it: the one
    event that tells backoffices a new expediente exists, however it started."""
    snapshot = expediente.model_dump(mode="json")
    uow.emit(
        EXPEDIENTE_INICIADO,
        {
            "expediente_id": expediente.id,
            "numero": expediente.numero,
            "anio": expediente.anio,
            "secuencia": expediente.secuencia,
            "procedimiento": expediente.procedimiento,
            "estado": domain.EstadoExpediente.INICIADO.value,
            "iniciacion": iniciacion,
            "asiento_id": expediente.asiento_id,
            "asiento_numero": expediente.asiento_numero,
            "fecha_inicio": snapshot["fecha_inicio"],
            "interesados": expediente.interesados,
        },
        subject=expediente.numero,
    )


async def abrir_expediente_de_oficio(uow: UnitOfWork, *, datos: ExpedienteCreate) -> ExpedienteRead:
    """Starts an expediente by the council's own decision (art. 58), with no asiento."""
    fecha = datetime.now(UTC)
    expediente = await _abrir(
        uow,
        procedimiento=datos.procedimiento,
        iniciacion="oficio",
        interesados=[i.model_dump(mode="json", exclude_none=True) for i in datos.interesados],
        asunto=datos.asunto,
        fecha=fecha,
        anio=motor.hoy_de(uow.tenant_id).year,
        asiento=None,
    )
    if expediente is None:
        raise Unprocessable(
            f"No hay ninguna versión publicada del procedimiento {datos.procedimiento}.",
            errors=[FieldError("procedimiento", "no existe o no está publicado")],
        )
    _anunciar_inicio(uow, expediente, iniciacion="oficio")
    return expediente


async def realizar_accion(
    uow: UnitOfWork,
    *,
    expediente_id: str,
    codigo: str,
    datos: dict[str, Any],
    roles: frozenset[str],
    hoy: date | None = None,
    documents: CpuPool | None = None,
) -> None:
    """Takes one action of the expediente's procedure for a user with ``roles``; the
    document it issues, if any, is rendered in the document workers ``documents``."""
    ctx = await motor.abrir(uow, expediente_id, hoy=hoy, documents=documents)
    await motor.aplicar_accion(ctx, codigo, dict(datos), roles=roles)
    uow.audit(
        action=codigo, entity="expediente", entity_id=expediente_id, new={"fase": ctx.row["fase"]}
    )


async def vencer_plazo(
    uow: UnitOfWork, *, plazo_id: str, hoy: date, documents: CpuPool | None = None
) -> bool:
    """Acts on one expired plazo, exactly once: the row is locked (another replica skips
    it) and marked as processed in the same transaction as the action it triggers."""
    row = (
        await uow.session.execute(
            select(plazos)
            .where(
                plazos.c.id == plazo_id,
                plazos.c.estado == EstadoPlazo.ABIERTO.value,
                plazos.c.vencimiento < hoy,
            )
            .with_for_update(skip_locked=True)
        )
    ).first()
    if row is None:
        return False
    await uow.session.execute(
        update(plazos)
        .where(plazos.c.id == plazo_id)
        .values(estado=EstadoPlazo.VENCIDO.value, procesado_at=datetime.now(UTC))
    )
    ctx = await motor.abrir(uow, row.expediente_id, hoy=hoy, documents=documents)
    datos: dict[str, Any] = {"plazo": row.tipo, "vencimiento": row.vencimiento.isoformat()}
    accion = row.accion_al_vencer
    if row.tipo == TipoPlazo.RESOLUCION.value:
        accion = _al_vencer_resolucion(ctx)
        if accion is None:
            # Arts. 24 and 25: the interesado may take the silence as it is; the duty to
            # resolve remains (art. 21.1), so the expediente stays open.
            silencio = ctx.definicion.data["silencio"]
            ctx.cambiar(silencio=silencio)
            await ctx.guardar()
            uow.add(
                historial,
                {
                    "tenant_id": uow.tenant_id,
                    "expediente_id": ctx.id,
                    "actor": uow.actor.sub,
                    "accion": "silencio",
                    "fase_desde": ctx.row["fase"],
                    "fase_hacia": None,
                    "datos": {**datos, "silencio": silencio},
                },
            )
            return True
    if accion is not None and ctx.row["fase"] in ctx.definicion.acciones[accion]["desde"]:
        await motor.aplicar_accion(
            ctx, accion, {"motivo": f"Vencido el plazo de {row.tipo}"}, roles=None
        )
    else:
        uow.add(
            historial,
            {
                "tenant_id": uow.tenant_id,
                "expediente_id": ctx.id,
                "actor": uow.actor.sub,
                "accion": "plazo-vencido",
                "fase_desde": ctx.row["fase"],
                "fase_hacia": None,
                "datos": datos,
            },
        )
    return True


def _al_vencer_resolucion(ctx: motor.Contexto) -> str | None:
    """Art. 25.1.b: a procedure started de oficio that can end unfavourably expires
    (caducidad) when its plazo ends; one started on request produces silence."""
    if ctx.row["iniciacion"] != "oficio":
        return None
    for accion in ctx.definicion.acciones_desde(ctx.row["fase"]):
        if accion["tipo"] == "resolver" and "caducidad" in accion.get("sentidos", []):
            return str(accion["codigo"])
    return None


async def atender_respuesta(
    uow: UnitOfWork, event: ReceivedEvent, *, documents: CpuPool | None = None
) -> bool:
    """An answer another service sent (a payment, a notification) lets the expediente
    that waits for it go on; answers for nobody waiting are acknowledged and ignored."""
    solicitud = event.data.get("solicitud_id")
    expediente_id = event.data.get("expediente_id")
    if not solicitud or not expediente_id:
        return False
    try:
        ctx = await motor.abrir(uow, str(expediente_id), documents=documents)
    except NotFound:
        _log.info("answer %s for unknown expediente %s", event.name, expediente_id)
        return False
    if ctx.row["espera_evento"] != str(event.name) or ctx.row["espera_solicitud"] != solicitud:
        _log.info("expediente %s does not wait for %s %s", ctx.row["numero"], event.name, solicitud)
        return False
    espera = ctx.definicion.fases[ctx.row["fase"]]["espera"]
    await motor.aplicar_accion(ctx, espera["accion"], {"respuesta": dict(event.data)}, roles=None)
    return True


async def consultar_expediente(
    session: AsyncSession,
    *,
    tenant_id: str,
    expediente_id: str,
    roles: frozenset[str],
    interesado: str | None = None,
) -> ExpedienteDetalle:
    """One expediente with its trámites, plazos, history and the caller's actions.

    ``interesado`` (a citizen's NIF) restricts it to expedientes where they are the
    interesado; anybody else's is a 404, as another tenant's is.
    """
    try:
        uuid.UUID(expediente_id)
    except ValueError:
        raise NotFound(f"No existe el expediente {expediente_id}.") from None
    query = select(expedientes).where(
        expedientes.c.tenant_id == tenant_id, expedientes.c.id == expediente_id
    )
    if interesado is not None:
        query = query.where(expedientes.c.interesados.contains([{"identificador": interesado}]))
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe el expediente {expediente_id}.")
    data = dict(row._mapping)
    definicion = await definicion_de(
        session,
        tenant_id=tenant_id,
        codigo=data["procedimiento"],
        version=data["procedimiento_version"],
    )
    calendario = await calendario_de(session, tenant_id=tenant_id, interesados=data["interesados"])
    hoy = motor.hoy_de(tenant_id)
    abiertos = (
        await session.execute(
            select(tramites)
            .where(tramites.c.expediente_id == expediente_id, tramites.c.estado == "abierto")
            .order_by(tramites.c.created_at, tramites.c.codigo)
        )
    ).all()
    lista_plazos = (
        await session.execute(
            select(plazos)
            .where(plazos.c.expediente_id == expediente_id)
            .order_by(plazos.c.created_at)
        )
    ).all()
    eventos = (
        await session.execute(
            select(historial)
            .where(historial.c.expediente_id == expediente_id)
            .order_by(historial.c.id)
        )
    ).all()
    docs = (
        await session.execute(
            select(documentos)
            .where(documentos.c.expediente_id == expediente_id)
            .order_by(documentos.c.created_at)
        )
    ).all()
    acciones: list[AccionRead] = []
    if interesado is None:
        situacion = await motor.situacion_de(session, data, definicion)
        acciones = [
            AccionRead(**vars(a))
            for a in domain.acciones_posibles(
                definicion.data["flujo"]["acciones"], situacion, roles
            )
        ]
    return ExpedienteDetalle(
        **ExpedienteRead.model_validate(data).model_dump(),
        fase_nombre=definicion.fases[data["fase"]]["nombre"],
        tramites=[TramiteRead.model_validate(t._mapping) for t in abiertos],
        plazos=[_plazo(p, hoy, calendario) for p in lista_plazos],
        historial=[HistorialRead.model_validate(h._mapping) for h in eventos],
        acciones=acciones,
        documentos=[DocumentoRead.model_validate(d._mapping) for d in docs],
        incidencias=await _incidencias_de(session, expediente_id) if interesado is None else [],
    )


def _plazo(row: Any, hoy: date, calendario: Calendario) -> PlazoRead:
    corre = row.estado == EstadoPlazo.ABIERTO.value
    return PlazoRead(
        id=row.id,
        tipo=row.tipo,
        inicio=row.inicio,
        vencimiento=row.vencimiento,
        estado=row.estado,
        dias_habiles_restantes=dias_habiles_entre(hoy, row.vencimiento, calendario)
        if corre
        else None,
        dias_suspendidos=row.dias_suspendidos,
    )


async def listar_expedientes(
    session: AsyncSession,
    *,
    tenant_id: str,
    filtros: dict[str, Any],
    cursor: str | None,
    limit: int,
) -> tuple[list[ExpedienteRead], str | None]:
    """The council's expedientes, newest first, by number, interesado (NIF or name),
    procedure, state, phase, unit, asiento and dates; keyset pagination."""
    c = expedientes.c
    query = select(expedientes).where(c.tenant_id == tenant_id)
    if filtros.get("asiento_id"):
        try:
            uuid.UUID(filtros["asiento_id"])
        except ValueError:
            return [], None
        query = query.where(c.asiento_id == filtros["asiento_id"])
    for campo in ("numero", "procedimiento", "estado", "fase", "unidad"):
        if filtros.get(campo):
            query = query.where(getattr(c, campo) == filtros[campo])
    if filtros.get("interesado_id"):
        query = query.where(c.interesados.contains([{"identificador": filtros["interesado_id"]}]))
    if filtros.get("interesado"):
        termino = str(filtros["interesado"]).strip()
        identificador = termino.upper().replace("-", "")
        if _IDENTIFICADOR.fullmatch(identificador):
            # An identity document: any interesado of the expediente (GIN index, through
            # a SECURITY DEFINER function confined to the tenant, see migration 0004).
            valor = [{"identificador": identificador}]
            ids = func.tramitador.ids_por_interesado(cast(valor, JSONB))
            query = query.where(c.id.in_(select(ids.column_valued())))
        else:
            # Part of a name of the first interesado (trigram index, same way).
            patron = f"%{_escape_like(termino)}%"
            ids = func.tramitador.ids_por_nombre(patron)
            query = query.where(c.id.in_(select(ids.column_valued())))
    if filtros.get("desde"):
        query = query.where(c.fecha_inicio >= filtros["desde"])
    if filtros.get("hasta"):
        query = query.where(c.fecha_inicio < filtros["hasta"])
    if cursor:
        try:
            fecha, ultimo = domain.decodificar_cursor(cursor, 2)
            instante = datetime.fromisoformat(fecha)
            uuid.UUID(ultimo)
        except ValueError as exc:
            raise Unprocessable(str(exc), errors=[FieldError("cursor", str(exc))]) from None
        query = query.where(
            (c.fecha_inicio < instante) | ((c.fecha_inicio == instante) & (c.id < ultimo))
        )
    rows = (
        await session.execute(query.order_by(c.fecha_inicio.desc(), c.id.desc()).limit(limit + 1))
    ).all()
    items = [ExpedienteRead.model_validate(r._mapping) for r in rows[:limit]]
    siguiente = None
    if len(rows) > limit:
        last = items[-1]
        siguiente = domain.codificar_cursor(last.fecha_inicio.isoformat(), last.id)
    return items, siguiente


# NIF (8 digits + letter), NIE (X/Y/Z + 7 digits + letter) or CIF (letter + 7 digits + one).
_IDENTIFICADOR = re.compile(r"[0-9A-Z]\d{7}[0-9A-Z]")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def documento_emitido(uow: UnitOfWork, *, documento: DocumentoRead) -> None:
    """Once the resolution's document is issued (CSV, seal), the expediente waiting in its
    notification phase asks for that document to be notified."""
    ctx = await motor.abrir(uow, documento.expediente_id)
    espera = ctx.definicion.fases[ctx.row["fase"]].get("espera")
    resoluciones = {
        a.get("documento") for a in ctx.definicion.acciones.values() if a["tipo"] == "resolver"
    }
    if (
        espera is None
        or espera["evento"] != NOTIFICACION_PRACTICADA
        or ctx.row["espera_solicitud"] is not None
        or ctx.row["resolucion"] is None
        or documento.plantilla not in resoluciones
    ):
        return
    motor.solicitar_notificacion(
        ctx, plantilla=documento.plantilla, documento_id=documento.documento_id
    )
    await ctx.guardar()


async def adjuntar_documento(
    uow: UnitOfWork, *, expediente_id: str, datos: DocumentoAdjunto
) -> DocumentoRead:
    """Attaches a document of the repositorio to an expediente of the council (404 else)."""
    ctx = await motor.abrir(uow, expediente_id)
    documento = await documentos_service.adjuntar_documento(
        uow, expediente_id=ctx.id, documento_id=datos.documento_id, titulo=datos.titulo
    )
    uow.add(
        historial,
        {
            "tenant_id": uow.tenant_id,
            "expediente_id": ctx.id,
            "actor": uow.actor.sub,
            "accion": "adjuntar-documento",
            "fase_desde": ctx.row["fase"],
            "fase_hacia": None,
            "datos": {"documento_id": documento.documento_id, "titulo": documento.titulo},
        },
    )
    return documento


# --- incidencias: a request another service could not carry out ----------------------------

NOTIFICACION_FALLIDA = "notificaciones.notificacion.fallida.v1"
REQUERIMIENTO_RECHAZADO = "pagos.requerimiento.rechazado.v1"
_TRAMITE_INCIDENCIA = "resolver-incidencia"


async def registrar_incidencia(uow: UnitOfWork, event: ReceivedEvent) -> bool:
    """notificaciones could not notify (``fallida``) or pagos could not charge
    (``requerimiento.rechazado``) what the expediente waits for: the expediente records an
    incidencia, once per request, with a trámite in its unit's bandeja, instead of waiting
    in silence. Answers for a request nobody waits for any more are ignored."""
    data = event.data
    solicitud = data.get("solicitud_id")
    expediente_id = data.get("expediente_id")
    if not solicitud or not expediente_id:
        return False
    try:
        ctx = await motor.abrir(uow, str(expediente_id))
    except NotFound:
        _log.info("incidencia %s for unknown expediente %s", event.name, expediente_id)
        return False
    if ctx.row["espera_solicitud"] != solicitud:
        _log.info("expediente %s does not wait for %s", ctx.row["numero"], solicitud)
        return False
    origen = "notificacion" if str(event.name) == NOTIFICACION_FALLIDA else "pago"
    detalle = {
        k: data[k]
        for k in ("notificacion_id", "destinatario", "codigo", "motivo", "conceptos")
        if data.get(k) is not None
    }
    previa = (
        await uow.session.execute(
            select(incidencias)
            .where(
                incidencias.c.tenant_id == uow.tenant_id, incidencias.c.solicitud_id == solicitud
            )
            .with_for_update()
        )
    ).first()
    if previa is not None:
        # One incidencia per request: each interesado's fallida adds its detail, once.
        if detalle not in previa.detalles:
            await uow.session.execute(
                update(incidencias)
                .where(incidencias.c.id == previa.id)
                .values(detalles=[*previa.detalles, detalle])
            )
        return True
    incidencia_id = str(uuid.uuid4())
    unidad = ctx.row["unidad"]
    tramite_id = await motor.nuevo_tramite(
        ctx,
        ctx.row["fase"],
        {
            "codigo": _TRAMITE_INCIDENCIA,
            "nombre": f"Resolver la incidencia: {data['motivo']}"[:300],
            "asignado": {"unidad": unidad} if unidad else {"rol": "tramitador"},
        },
    )
    fila = {
        "id": incidencia_id,
        "tenant_id": uow.tenant_id,
        "expediente_id": ctx.id,
        "solicitud_id": solicitud,
        "origen": origen,
        "codigo": str(data["codigo"]),
        "motivo": str(data["motivo"]),
        "detalles": [detalle],
        "documento_id": data.get("documento_id"),
        "estado": "abierta",
        "tramite_id": tramite_id,
    }
    await uow.session.execute(insert(incidencias).values(**fila))
    uow.audit(action="registrar-incidencia", entity="expediente", entity_id=ctx.id, new=fila)
    uow.add(
        historial,
        {
            "tenant_id": uow.tenant_id,
            "expediente_id": ctx.id,
            "actor": uow.actor.sub,
            "accion": "incidencia",
            "fase_desde": ctx.row["fase"],
            "fase_hacia": None,
            "datos": {"incidencia": incidencia_id, "origen": origen, "codigo": fila["codigo"]},
        },
    )
    return True


async def resolver_incidencia(
    uow: UnitOfWork,
    *,
    expediente_id: str,
    incidencia_id: str,
    datos: IncidenciaResolver,
) -> ExpedienteRead:
    """Staff give what was missing (an interesado's channel data, a fee's importe) and the
    request is sent again under a new solicitud: the expediente goes on waiting for its
    answer, and the incidencia and its trámite are closed, in one transaction."""
    ctx = await motor.abrir(uow, expediente_id)
    try:
        uuid.UUID(incidencia_id)
    except ValueError:
        raise NotFound(f"No existe la incidencia {incidencia_id}.") from None
    fila = (
        await uow.session.execute(
            select(incidencias)
            .where(
                incidencias.c.tenant_id == uow.tenant_id,
                incidencias.c.expediente_id == ctx.id,
                incidencias.c.id == incidencia_id,
            )
            .with_for_update()
        )
    ).first()
    if fila is None:
        raise NotFound(f"No existe la incidencia {incidencia_id}.")
    if fila.estado != "abierta" or ctx.row["espera_solicitud"] != fila.solicitud_id:
        raise Conflict(
            "La incidencia ya no está abierta, o el expediente ya no espera esa petición.",
            errors=[FieldError("estado", f"la incidencia está {fila.estado}")],
        )
    if fila.origen == "pago":
        tasas = ctx.definicion.data.get("tasas", [])
        conceptos = {t["concepto"] for t in tasas}
        ajenos = sorted(set(datos.importes) - conceptos)
        if ajenos:
            raise Unprocessable(
                "Hay conceptos que no son tasas del procedimiento.",
                errors=[
                    FieldError(f"importes.{c}", "no es una tasa del procedimiento") for c in ajenos
                ],
            )
        importes = {**(ctx.row["importes"] or {}), **datos.importes}
        faltan = domain.tasas_sin_importe(tasas, importes)
        if faltan:
            raise Unprocessable(
                "Falta el importe de alguna tasa.",
                errors=[FieldError(f"importes.{c}", "falta el importe") for c in faltan],
            )
        ctx.cambiar(importes=importes)
        motor.requerir_pago(ctx)
    else:
        cambios = [d.model_dump(mode="json", exclude_none=True) for d in datos.interesados]
        interesados, ajenos = domain.con_datos_de_canal(ctx.row["interesados"], cambios)
        if ajenos:
            raise Unprocessable(
                "Hay identificadores que no son interesados del expediente.",
                errors=[
                    FieldError(f"interesados[{i}].identificador", "no es interesado del expediente")
                    for i, d in enumerate(datos.interesados)
                    if d.identificador in ajenos
                ],
            )
        documento = (
            await uow.session.execute(
                select(documentos.c.plantilla).where(
                    documentos.c.expediente_id == ctx.id,
                    documentos.c.documento_id == fila.documento_id,
                )
            )
        ).first()
        ctx.cambiar(interesados=interesados)
        motor.solicitar_notificacion(
            ctx,
            plantilla=documento.plantilla if documento else None,
            documento_id=fila.documento_id,
        )
    ahora = datetime.now(UTC)
    await uow.session.execute(
        update(incidencias)
        .where(incidencias.c.id == fila.id)
        .values(estado="resuelta", resuelta_at=ahora, resuelta_por=uow.actor.sub)
    )
    if fila.tramite_id is not None:
        await uow.session.execute(
            update(tramites)
            .where(tramites.c.id == fila.tramite_id, tramites.c.estado == "abierto")
            .values(estado="completado", completado_at=ahora, completado_por=uow.actor.sub)
        )
    await ctx.guardar()
    resumen = {
        "incidencia": fila.id,
        "origen": fila.origen,
        "solicitud": ctx.row["espera_solicitud"],
        **({"motivo": datos.motivo} if datos.motivo else {}),
    }
    uow.audit(
        action="resolver-incidencia",
        entity="expediente",
        entity_id=ctx.id,
        old={"incidencia": fila.id, "estado": fila.estado},
        new={**resumen, **datos.model_dump(mode="json", exclude_none=True)},
    )
    uow.add(
        historial,
        {
            "tenant_id": uow.tenant_id,
            "expediente_id": ctx.id,
            "actor": uow.actor.sub,
            "accion": "resolver-incidencia",
            "fase_desde": ctx.row["fase"],
            "fase_hacia": None,
            "datos": resumen,
        },
    )
    return ExpedienteRead.model_validate(ctx.row)


async def _incidencias_de(session: AsyncSession, expediente_id: str) -> list[IncidenciaRead]:
    filas = await session.execute(
        select(incidencias)
        .where(incidencias.c.expediente_id == expediente_id)
        .order_by(incidencias.c.creada_at, incidencias.c.id)
    )
    return [IncidenciaRead.model_validate(f._mapping) for f in filas]
