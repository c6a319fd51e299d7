"""Use cases of notificaciones, one transaction each, with their events in the outbox.

Every state change goes through :func:`_cambiar`: it applies the domain's
transition to a row locked ``FOR UPDATE``, writes it, audits it and emits the
event with the instant and the legal date, all in the caller's unit of work. The
instant comes from the caller (the app's clock), never from the database, so the
tests drive legal time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Select, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.consumer import PermanentFailure
from services.common.errors import Conflict, FieldError, NotFound, Unprocessable
from services.common.timezones import tenant_timezone
from services.common.uow import UnitOfWork
from services.notificaciones.avisos import filas_de_avisos
from services.notificaciones.domain import (
    Accion,
    Canal,
    Estado,
    Intento,
    ResultadoIntento,
    TransicionNoValida,
    canal_de,
    decidir_intento,
    fecha_legal,
    transicion,
    vencimiento,
)
from services.notificaciones.evidencias import solicitar_sellos
from services.notificaciones.models import avisos, consultas, intentos, notificaciones, sellos
from services.notificaciones.schemas import (
    AvisoRead,
    DocumentoNotificado,
    IntentoCreate,
    IntentoRead,
    InteresadoNotificado,
    NotificacionCiudadano,
    NotificacionCreate,
    NotificacionRead,
    PublicacionCreate,
)

__all__ = [
    "DOCUMENTO_CONSULTADO",
    "EVENTOS",
    "Filtros",
    "acceder",
    "atender_consulta",
    "SOLICITAR_NOTIFICACION",
    "crear_notificaciones",
    "get_notificacion",
    "listar_mias",
    "listar_notificaciones",
    "publicar_edicto",
    "rechazar",
    "registrar_intento",
    "vencer",
]

_PREFIJO = "notificaciones.notificacion."
PUESTA_DISPOSICION = _PREFIJO + "puesta-disposicion.v1"
PRACTICADA = _PREFIJO + "practicada.v1"
RECHAZADA = _PREFIJO + "rechazada.v1"
EXPIRADA = _PREFIJO + "expirada.v1"
FALLIDA = _PREFIJO + "fallida.v1"
EVENTOS = (PUESTA_DISPOSICION, PRACTICADA, RECHAZADA, EXPIRADA, FALLIDA)

_EVENTO_DE: dict[Estado, str] = {
    Estado.PRACTICADA: PRACTICADA,
    Estado.RECHAZADA: RECHAZADA,
    Estado.EXPIRADA: EXPIRADA,
    Estado.FALLIDA: FALLIDA,
}


def _canal(interesado: InteresadoNotificado) -> Canal:
    rep = interesado.representante
    return canal_de(
        tipo=interesado.tipo_identificador,
        identificador=interesado.identificador,
        eligio_electronico=interesado.eligio_electronico,
        otro_sujeto_14_2=interesado.otro_sujeto_14_2,
        representante=(rep.tipo_identificador, rep.identificador) if rep else None,
    )


def _datos_evento(row: dict[str, Any]) -> dict[str, Any]:
    """What every event of a notification carries (no personal data beyond the NIF)."""
    interesado = row["interesado"]
    return {
        "notificacion_id": row["id"],
        "solicitud_id": row["solicitud_id"],
        "documento_id": row["documento_id"],
        "expediente_id": row["expediente_id"],
        "canal": row["canal"],
        "destinatario": {
            "tipo_identificador": interesado["tipo_identificador"],
            "identificador": interesado["identificador"],
        },
    }


def _documento(row: dict[str, Any]) -> DocumentoNotificado:
    return DocumentoNotificado(
        documento_id=row["documento_id"],
        version=row["documento_version"],
        nombre=row["documento_nombre"],
        csv=row.get("documento_csv"),
        url_verificacion=row.get("documento_url"),
    )


def _read(
    row: dict[str, Any],
    filas_intentos: Sequence[dict[str, Any]] = (),
    filas_avisos: Sequence[dict[str, Any]] = (),
) -> NotificacionRead:
    return NotificacionRead.model_validate(
        {
            **row,
            "documento": _documento(row),
            "intentos": [IntentoRead.model_validate(i) for i in filas_intentos],
            "avisos": [AvisoRead.model_validate(a) for a in filas_avisos],
        }
    )


def vista_ciudadano(row: dict[str, Any]) -> NotificacionCiudadano:
    """The carpeta's view: sender and concepto; the document only once practicada."""
    practicada = row["estado"] == Estado.PRACTICADA.value
    return NotificacionCiudadano.model_validate(
        {
            **row,
            "documento": _documento(row) if practicada else None,
        }
    )


async def crear_notificaciones(
    uow: UnitOfWork,
    *,
    datos: NotificacionCreate,
    documento: DocumentoNotificado,
    emisor: str,
    ahora: datetime,
    origen: str = "api",
    solicitud_id: str | None = None,
) -> list[NotificacionRead]:
    """One notification per interesado: electronic ones put at disposal, postal ones to post.

    A postal addressee without a postal address is a 422 for the whole request:
    nothing is written, so staff fix it and send it again.
    """
    zona = tenant_timezone(uow.tenant_id)
    errores = sin_datos_de_canal(datos)
    if errores:
        raise Unprocessable("Hay interesados que no se pueden notificar así.", errors=errores)
    filas: list[dict[str, Any]] = []
    for interesado in datos.interesados:
        canal = _canal(interesado)
        electronica = canal is Canal.ELECTRONICO
        filas.append(
            {
                **_fila_nueva(
                    uow,
                    interesado,
                    datos=datos,
                    documento=documento,
                    emisor=emisor,
                    ahora=ahora,
                    origen=origen,
                    solicitud_id=solicitud_id,
                ),
                "estado": (Estado.PUESTA_DISPOSICION if electronica else Estado.EN_REPARTO).value,
                "puesta_en": ahora,
                "vence_en": vencimiento(ahora, zona) if electronica else None,
            }
        )
    for fila in filas:
        uow.add(notificaciones, fila)
        if fila["canal"] == Canal.ELECTRONICO.value:
            for aviso in filas_de_avisos(
                tenant_id=uow.tenant_id,
                notificacion_id=fila["id"],
                interesado=fila["interesado"],
                ahora=ahora,
            ):
                uow.add(avisos, aviso)
        uow.audit(
            action="crear-notificacion",
            entity="notificacion",
            entity_id=fila["id"],
            new=_read(fila).model_dump(mode="json", exclude={"interesado"}),
        )
        uow.emit(
            PUESTA_DISPOSICION,
            {
                **_datos_evento(fila),
                "fecha": ahora.isoformat(),
                "fecha_legal": fecha_legal(ahora, zona).isoformat(),
                "vence_en": fila["vence_en"].isoformat() if fila["vence_en"] else None,
            },
            subject=fila["id"],
        )
    if filas:
        uow.defer(insert(sellos).values(solicitar_sellos(uow, filas, en=ahora)))
    return [_read(fila) for fila in filas]


_SIN_DIRECCION = (
    "quien no se relaciona electrónicamente se notifica en papel: falta la dirección postal"
)


def _sin_canal(interesado: InteresadoNotificado) -> bool:
    """A person notified on paper (art. 14.1: they did not choose the electronic channel)
    with no postal address cannot be notified by any channel."""
    return _canal(interesado) is Canal.POSTAL and interesado.direccion_postal is None


def sin_datos_de_canal(datos: NotificacionCreate) -> list[FieldError]:
    """The interesados who cannot be notified by any channel, as 422 field errors."""
    return [
        FieldError(f"interesados[{i}].direccion_postal", _SIN_DIRECCION)
        for i, interesado in enumerate(datos.interesados)
        if _sin_canal(interesado)
    ]


def _fila_nueva(
    uow: UnitOfWork,
    interesado: InteresadoNotificado,
    *,
    datos: NotificacionCreate,
    documento: DocumentoNotificado,
    emisor: str,
    ahora: datetime,
    origen: str,
    solicitud_id: str | None,
) -> dict[str, Any]:
    """A new notification's row, before the state its creation gives it."""
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "canal": _canal(interesado).value,
        "documento_id": documento.documento_id,
        "documento_version": documento.version,
        "documento_nombre": documento.nombre,
        "documento_csv": documento.csv,
        "documento_url": documento.url_verificacion,
        "expediente_id": datos.expediente_id,
        "concepto": datos.concepto,
        "emisor": emisor,
        "interesado": interesado.model_dump(mode="json"),
        "interesado_identificador": interesado.identificador,
        "representante_identificador": (
            interesado.representante.identificador if interesado.representante else None
        ),
        "origen": origen,
        "solicitud_id": solicitud_id,
        "creada_en": ahora,
        "puesta_en": None,
        "vence_en": None,
        "efectos_en": None,
        "fecha_legal": None,
        "publicacion": None,
        "motivo": None,
        "actualizada_en": ahora,
    }


def _fallidas(
    uow: UnitOfWork,
    *,
    datos: NotificacionCreate,
    documento: DocumentoNotificado,
    emisor: str,
    ahora: datetime,
    solicitud_id: str,
    causas: dict[int, tuple[str, str]],
) -> list[NotificacionRead]:
    """Notifications that could not be made at all, one per interesado in ``causas``
    (index → codigo, motivo): recorded as ``fallida``, time-stamped and announced with
    ``notificaciones.notificacion.fallida.v1`` so the requester does not wait in silence."""
    filas = []
    for i, (codigo, motivo) in sorted(causas.items()):
        fila = {
            **_fila_nueva(
                uow,
                datos.interesados[i],
                datos=datos,
                documento=documento,
                emisor=emisor,
                ahora=ahora,
                origen="tramitador",
                solicitud_id=solicitud_id,
            ),
            "estado": Estado.FALLIDA.value,
            "motivo": motivo,
        }
        filas.append(fila)
        uow.add(notificaciones, fila)
        uow.audit(
            action="notificacion-fallida",
            entity="notificacion",
            entity_id=fila["id"],
            new=_read(fila).model_dump(mode="json", exclude={"interesado"}),
        )
        uow.emit(
            FALLIDA,
            {**_datos_evento(fila), "fecha": ahora.isoformat(), "motivo": motivo, "codigo": codigo},
            subject=fila["id"],
        )
    if filas:
        uow.defer(insert(sellos).values(solicitar_sellos(uow, filas, en=ahora)))
    return [_read(fila) for fila in filas]


# --- the tramitador's command ---------------------------------------------------------------

SOLICITAR_NOTIFICACION = "tramitador.notificacion.solicitar.v1"
CONSULTAR_DOCUMENTO = "repositorio.documento.consultar.v1"
DOCUMENTO_CONSULTADO = "repositorio.documento.consultado.v1"
SOLICITANTE = "notificaciones"


async def solicitar_notificacion(
    uow: UnitOfWork, *, datos: dict[str, Any], emisor: str, ahora: datetime
) -> list[NotificacionRead]:
    """The tramitador asks for a document to be notified: first ask the repositorio
    whether the document exists (``repositorio.documento.consultar.v1``; services hold no
    credential of each other), and create the notifications on its answer.

    ``datos`` is the command as its contract (tramitador.notificacion.solicitar.v1)
    defines it. A redelivered command changes nothing (the consulta and the
    notifications are unique per solicitud). A command naming an interesado who cannot
    be notified by any channel is refused whole, answered with a ``fallida`` per such
    interesado (codigo ``sin-datos-de-canal``), so the tramitador can ask staff for the
    data. Only a command that cannot be answered at all (no solicitud, no document, no
    interesados, malformed) is dead-lettered.
    """
    solicitud_id = _uuid(str(datos.get("solicitud_id") or ""))
    if solicitud_id is None:
        raise PermanentFailure(f"{SOLICITAR_NOTIFICACION} sin solicitud_id válido")
    previas = await _de_la_solicitud(uow, solicitud_id)
    if previas:
        return previas
    consultada = await uow.session.execute(
        select(consultas.c.estado).where(
            consultas.c.tenant_id == uow.tenant_id, consultas.c.solicitud_id == solicitud_id
        )
    )
    if consultada.first() is not None:
        return []
    documento = datos.get("documento")
    documento_id = documento.get("documento_id") if isinstance(documento, dict) else None
    if documento_id is None or _uuid(str(documento_id)) is None:
        raise PermanentFailure(
            f"{SOLICITAR_NOTIFICACION} sin documento.documento_id: no hay documento que notificar"
        )
    interesados = datos.get("interesados")
    if not isinstance(interesados, list) or not interesados:
        raise PermanentFailure(f"{SOLICITAR_NOTIFICACION} sin interesados")
    try:
        pedido = NotificacionCreate.model_validate(
            {
                "documento_id": str(documento_id),
                "expediente_id": datos.get("expediente_id"),
                "concepto": datos.get("asunto"),
                "interesados": [_interesado_del_comando(i) for i in interesados],
            }
        )
    except (ValueError, TypeError) as exc:
        raise PermanentFailure(f"{SOLICITAR_NOTIFICACION} no válido: {exc}") from exc
    documento_id = pedido.documento_id.lower()
    causas = {
        i: ("sin-datos-de-canal", f"{interesado.identificador}: {_SIN_DIRECCION}")
        for i, interesado in enumerate(pedido.interesados)
        if _sin_canal(interesado)
    }
    if causas:
        return _fallidas(
            uow,
            datos=pedido,
            documento=DocumentoNotificado(documento_id=documento_id),
            emisor=emisor,
            ahora=ahora,
            solicitud_id=solicitud_id,
            causas=causas,
        )
    uow.add(
        consultas,
        {
            "tenant_id": uow.tenant_id,
            "solicitud_id": solicitud_id,
            "documento_id": documento_id,
            "datos": pedido.model_dump(mode="json"),
            "emisor": emisor,
            "estado": "consultando",
            "creada_en": ahora,
            "atendida_en": None,
        },
    )
    uow.emit(
        CONSULTAR_DOCUMENTO,
        {"solicitud_id": solicitud_id, "solicitante": SOLICITANTE, "documento_id": documento_id},
        subject=documento_id,
    )
    return []


async def atender_consulta(
    uow: UnitOfWork, *, datos: dict[str, Any], ahora: datetime
) -> list[NotificacionRead]:
    """The repositorio answered about the document of a waiting command: the notifications
    are created with the version, name and CSV it named, or, when the document does not
    exist, every interesado's notification is ``fallida`` (``documento-no-encontrado``).
    Another service's answer, or a second answer, changes nothing."""
    if datos.get("solicitante") != SOLICITANTE:
        return []
    solicitud_id = _uuid(str(datos.get("solicitud_id") or ""))
    if solicitud_id is None:
        return []
    consulta = (
        await uow.session.execute(
            select(consultas)
            .where(
                consultas.c.tenant_id == uow.tenant_id,
                consultas.c.solicitud_id == solicitud_id,
                consultas.c.estado == "consultando",
            )
            .with_for_update()
        )
    ).first()
    if consulta is None:
        return []
    await uow.session.execute(
        update(consultas)
        .where(consultas.c.tenant_id == uow.tenant_id, consultas.c.solicitud_id == solicitud_id)
        .values(estado="atendida", atendida_en=ahora)
    )
    pedido = NotificacionCreate.model_validate(consulta.datos)
    if not datos.get("encontrado"):
        motivo = f"El documento {consulta.documento_id} no existe en el repositorio de la entidad."
        return _fallidas(
            uow,
            datos=pedido,
            documento=DocumentoNotificado(documento_id=consulta.documento_id),
            emisor=consulta.emisor,
            ahora=ahora,
            solicitud_id=solicitud_id,
            causas={i: ("documento-no-encontrado", motivo) for i in range(len(pedido.interesados))},
        )
    return await crear_notificaciones(
        uow,
        datos=pedido,
        documento=DocumentoNotificado(
            documento_id=consulta.documento_id,
            version=datos.get("version"),
            nombre=datos.get("nombre"),
            csv=datos.get("csv"),
            url_verificacion=datos.get("url_verificacion"),
        ),
        emisor=consulta.emisor,
        ahora=ahora,
        origen="tramitador",
        solicitud_id=solicitud_id,
    )


async def _de_la_solicitud(uow: UnitOfWork, solicitud_id: str) -> list[NotificacionRead]:
    previas = (
        await uow.session.execute(
            select(notificaciones)
            .where(
                notificaciones.c.tenant_id == uow.tenant_id,
                notificaciones.c.solicitud_id == solicitud_id,
            )
            .order_by(notificaciones.c.creada_en, notificaciones.c.id)
        )
    ).all()
    return [_read(dict(row._mapping)) for row in previas]


def _interesado_del_comando(interesado: Any) -> dict[str, Any]:
    """The contract's interesado as the REST body's: surnames join the name.

    The contract leaves properties open, so a requester may send the channel data
    (``eligio_electronico``, ``email``, ``direccion_postal``...) the REST body has.
    """
    if not isinstance(interesado, dict):
        raise TypeError("un interesado es un objeto")
    partes = [interesado.get(k) for k in ("nombre", "apellido1", "apellido2")]
    campos = {
        k: v
        for k, v in interesado.items()
        if k in InteresadoNotificado.model_fields and v is not None
    }
    return {**campos, "nombre": " ".join(str(p) for p in partes if p)}


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def _fila(
    session: AsyncSession, notificacion_id: str, *, for_update: bool = False
) -> dict[str, Any]:
    """The notification (locked when asked); another tenant's or a bad id is a 404."""
    ident = _uuid(notificacion_id)
    row = None
    if ident is not None:
        query = select(notificaciones).where(notificaciones.c.id == ident)
        if for_update:
            query = query.with_for_update()
        row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe la notificación {notificacion_id}.")
    return dict(row._mapping)


async def _intentos(session: AsyncSession, notificacion_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(intentos)
        .where(intentos.c.notificacion_id == notificacion_id)
        .order_by(intentos.c.en, intentos.c.id)
    )
    return [dict(r._mapping) for r in rows]


async def _avisos(session: AsyncSession, notificacion_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(avisos).where(avisos.c.notificacion_id == notificacion_id).order_by(avisos.c.canal)
    )
    return [dict(r._mapping) for r in rows]


async def get_notificacion(session: AsyncSession, *, notificacion_id: str) -> NotificacionRead:
    """One notification of the session's tenant, with its postal attempts and avisos."""
    row = await _fila(session, notificacion_id)
    return _read(row, await _intentos(session, row["id"]), await _avisos(session, row["id"]))


def _cambiar(
    uow: UnitOfWork,
    row: dict[str, Any],
    accion: Accion,
    *,
    efectos_en: datetime,
    ahora: datetime,
    extra: dict[str, Any] | None = None,
    cambios: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Applies a transition to a locked row: update, audit and event in the unit of work."""
    try:
        nuevo = transicion(Estado(row["estado"]), accion)
    except TransicionNoValida as exc:
        raise Conflict(
            f"La notificación está {row['estado']}: no admite '{accion.value}'."
        ) from exc
    zona = tenant_timezone(uow.tenant_id)
    valores: dict[str, Any] = {"estado": nuevo.value, "actualizada_en": ahora, **(cambios or {})}
    if nuevo in _EVENTO_DE and nuevo is not Estado.FALLIDA:
        valores["efectos_en"] = efectos_en
        valores["fecha_legal"] = fecha_legal(efectos_en, zona)
    uow.defer(update(notificaciones).where(notificaciones.c.id == row["id"]).values(**valores))
    despues = {**row, **valores}
    uow.audit(
        action=f"notificacion-{accion.value}",
        entity="notificacion",
        entity_id=row["id"],
        old={"estado": row["estado"]},
        new={
            k: (v.isoformat() if isinstance(v, datetime | date) else v) for k, v in valores.items()
        },
    )
    uow.defer(insert(sellos).values(solicitar_sellos(uow, [despues], en=ahora)))
    evento = _EVENTO_DE.get(nuevo)
    if evento is not None:
        data = {**_datos_evento(row), "fecha": efectos_en.isoformat(), **(extra or {})}
        if nuevo is not Estado.FALLIDA:
            data["fecha_legal"] = valores["fecha_legal"].isoformat()
        uow.emit(evento, data, subject=row["id"])
    return despues


def _es_destinatario(row: dict[str, Any], nif: str) -> bool:
    return nif in (row["interesado_identificador"], row["representante_identificador"])


def _vencida(row: dict[str, Any], ahora: datetime) -> bool:
    vence = row["vence_en"]
    return bool(
        row["estado"] == Estado.PUESTA_DISPOSICION.value and vence is not None and ahora >= vence
    )


def _expirar(uow: UnitOfWork, row: dict[str, Any], ahora: datetime) -> dict[str, Any]:
    return _cambiar(
        uow,
        row,
        Accion.VENCER,
        efectos_en=row["vence_en"],
        ahora=ahora,
        extra={"puesta_en": row["puesta_en"].isoformat()},
    )


async def _del_destinatario(uow: UnitOfWork, notificacion_id: str, nif: str) -> dict[str, Any]:
    """The notification addressed to ``nif`` (or represented by them), locked; else 404."""
    row = await _fila(uow.session, notificacion_id, for_update=True)
    if not _es_destinatario(row, nif):
        # Somebody else's notification does not exist for this citizen.
        raise NotFound(f"No existe la notificación {notificacion_id}.")
    return row


async def acceder(
    uow: UnitOfWork, *, notificacion_id: str, nif: str, ahora: datetime
) -> NotificacionCiudadano | None:
    """The addressee opens the notification: practicada at that instant, with its document.

    Opening it again shows it again without changing anything. At or after its
    expiry instant it is expired instead, even if the scheduler has not run yet
    (answered None: the caller reports the expiry).
    """
    row = await _del_destinatario(uow, notificacion_id, nif)
    if row["estado"] == Estado.PRACTICADA.value and row["canal"] == Canal.ELECTRONICO.value:
        return vista_ciudadano(row)
    if _vencida(row, ahora):
        _expirar(uow, row, ahora)
        return None
    nuevo = _cambiar(
        uow,
        row,
        Accion.ACCEDER,
        efectos_en=ahora,
        ahora=ahora,
        extra={"via": "acceso", "accedida_por": nif},
    )
    return vista_ciudadano(nuevo)


async def rechazar(
    uow: UnitOfWork, *, notificacion_id: str, nif: str, ahora: datetime
) -> NotificacionCiudadano | None:
    """The addressee rejects the notification (art. 41.5); None when it had already expired."""
    row = await _del_destinatario(uow, notificacion_id, nif)
    if _vencida(row, ahora):
        _expirar(uow, row, ahora)
        return None
    nuevo = _cambiar(
        uow, row, Accion.RECHAZAR, efectos_en=ahora, ahora=ahora, extra={"via": "rechazo"}
    )
    return vista_ciudadano(nuevo)


async def vencer(uow: UnitOfWork, *, ids: Sequence[str], ahora: datetime) -> int:
    """Expires the due notifications among ``ids`` (art. 43.2); answers how many.

    Rows another transaction holds are skipped (``SKIP LOCKED``): that one is
    accessing, rejecting or expiring them, and exactly one of them wins the row; a
    row no longer at disposal or not yet due is left alone. Set-based (one UPDATE
    and one insert each for audit and outbox), because a whole batch often expires
    in the same second.
    """
    c = notificaciones.c
    found = await uow.session.execute(
        select(notificaciones)
        .where(
            c.id.in_(list(ids)),
            c.estado == Estado.PUESTA_DISPOSICION.value,
            c.vence_en <= ahora,
        )
        .with_for_update(skip_locked=True)
    )
    filas = [dict(r._mapping) for r in found]
    if not filas:
        return 0
    zona = tenant_timezone(uow.tenant_id)
    nuevo = transicion(Estado.PUESTA_DISPOSICION, Accion.VENCER)
    # A batch is written at once, the inserts as executemany: one compiled statement each
    # instead of thousands of deferred VALUES (see vencimientos.LOTE_MAXIMO).
    session = uow.session
    await session.execute(
        update(notificaciones)
        .where(c.id.in_([f["id"] for f in filas]))
        .values(
            estado=nuevo.value,
            efectos_en=c.vence_en,
            fecha_legal=func.date(func.timezone(zona.key, c.vence_en)),
            actualizada_en=ahora,
        )
    )
    await session.execute(
        insert(uow.tables.audit_log),
        [
            {
                "tenant_id": uow.tenant_id,
                "actor": uow.actor.sub,
                "action": f"notificacion-{Accion.VENCER.value}",
                "entity": "notificacion",
                "entity_id": f["id"],
                "old_values": {"estado": f["estado"]},
                "new_values": {"estado": nuevo.value, "efectos_en": f["vence_en"].isoformat()},
                "client_ip": None,
                "request_id": None,
            }
            for f in filas
        ],
    )
    registros = solicitar_sellos(
        uow,
        [
            {
                **f,
                "estado": nuevo.value,
                "efectos_en": f["vence_en"],
                "fecha_legal": fecha_legal(f["vence_en"], zona),
            }
            for f in filas
        ],
        en=ahora,
    )
    await session.execute(insert(sellos), registros)
    for f in filas:
        uow.emit(
            EXPIRADA,
            {
                **_datos_evento(f),
                "fecha": f["vence_en"].isoformat(),
                "fecha_legal": fecha_legal(f["vence_en"], zona).isoformat(),
                "puesta_en": f["puesta_en"].isoformat(),
            },
            subject=f["id"],
        )
    return len(filas)


async def registrar_intento(
    uow: UnitOfWork, *, notificacion_id: str, intento: IntentoCreate, ahora: datetime
) -> NotificacionRead:
    """Records a postal delivery attempt and what it leads to (art. 42.2, 44)."""
    row = await _fila(uow.session, notificacion_id, for_update=True)
    if row["estado"] != Estado.EN_REPARTO.value:
        raise Conflict(f"La notificación está {row['estado']}: no admite intentos de entrega.")
    if intento.en > ahora:
        raise Unprocessable(
            "Un intento no puede ser futuro.", errors=[FieldError("en", "fecha futura")]
        )
    zona = tenant_timezone(uow.tenant_id)
    previos = await _intentos(uow.session, row["id"])
    decision = decidir_intento(
        [Intento(ResultadoIntento(p["resultado"]), p["en"], p["valido"]) for p in previos],
        Intento(intento.resultado, intento.en),
        zona,
    )
    fila = {
        "tenant_id": uow.tenant_id,
        "notificacion_id": row["id"],
        "resultado": intento.resultado.value,
        "en": intento.en,
        "receptor_nombre": intento.receptor_nombre,
        "receptor_nif": intento.receptor_nif,
        "valido": decision.valido,
        "motivo": decision.motivo,
        "registrado_por": uow.actor.sub,
        "registrado_en": ahora,
    }
    uow.add(intentos, fila)
    despues = row
    if decision.valido:
        extra: dict[str, Any] = {}
        if decision.accion is Accion.ENTREGAR:
            extra = {"via": "entrega"}
        elif decision.accion is Accion.REHUSAR:
            extra = {"via": "rehusada"}
        despues = _cambiar(
            uow, row, decision.accion, efectos_en=intento.en, ahora=ahora, extra=extra
        )
    else:
        uow.audit(
            action="intento-no-valido",
            entity="notificacion",
            entity_id=row["id"],
            new={"resultado": intento.resultado.value, "motivo": decision.motivo},
        )
    return _read(despues, [*previos, {**fila}])


async def publicar_edicto(
    uow: UnitOfWork, *, notificacion_id: str, publicacion: PublicacionCreate, ahora: datetime
) -> NotificacionRead:
    """Records the BOE anuncio (art. 44): the notification is practicada on that day."""
    row = await _fila(uow.session, notificacion_id, for_update=True)
    zona = tenant_timezone(uow.tenant_id)
    if publicacion.fecha > fecha_legal(ahora, zona):
        raise Unprocessable(
            "La publicación no puede ser futura.", errors=[FieldError("fecha", "fecha futura")]
        )
    inicio_dia = datetime.combine(publicacion.fecha, time(0, 0), tzinfo=zona)
    despues = _cambiar(
        uow,
        row,
        Accion.PUBLICAR,
        efectos_en=inicio_dia,
        ahora=ahora,
        extra={"via": "publicacion"},
        cambios={"publicacion": publicacion.model_dump(mode="json")},
    )
    return _read(despues, await _intentos(uow.session, row["id"]))


class Filtros:
    """What staff search notifications by."""

    def __init__(
        self,
        *,
        estado: Estado | None = None,
        expediente_id: str | None = None,
        interesado: str | None = None,
        desde: datetime | None = None,
        hasta: datetime | None = None,
    ) -> None:
        self.estado = estado
        self.expediente_id = expediente_id
        self.interesado = interesado
        self.desde = desde
        self.hasta = hasta

    def aplicar(self, query: Select[Any]) -> Select[Any]:
        """``query`` narrowed to these filters (dates on ``creada_en``, ``hasta`` excluded)."""
        c = notificaciones.c
        if self.estado is not None:
            query = query.where(c.estado == self.estado.value)
        if self.expediente_id is not None:
            query = query.where(c.expediente_id == self.expediente_id)
        if self.interesado is not None:
            ident = "".join(self.interesado.split()).upper()
            query = query.where(
                or_(c.interesado_identificador == ident, c.representante_identificador == ident)
            )
        if self.desde is not None:
            query = query.where(c.creada_en >= self.desde)
        if self.hasta is not None:
            query = query.where(c.creada_en < self.hasta)
        return query


async def listar_notificaciones(
    session: AsyncSession, *, filtros: Filtros, limit: int, offset: int
) -> list[NotificacionRead]:
    """The tenant's notifications matching ``filtros``, newest first."""
    query = filtros.aplicar(select(notificaciones))
    rows = await session.execute(
        query.order_by(notificaciones.c.creada_en.desc(), notificaciones.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [_read(dict(r._mapping)) for r in rows]


async def listar_mias(
    session: AsyncSession, *, nif: str, limit: int, offset: int
) -> list[NotificacionCiudadano]:
    """The notifications addressed to ``nif`` or to those they represent, newest first."""
    c = notificaciones.c
    rows = await session.execute(
        select(notificaciones)
        .where(or_(c.interesado_identificador == nif, c.representante_identificador == nif))
        .order_by(c.creada_en.desc(), c.id)
        .limit(limit)
        .offset(offset)
    )
    return [vista_ciudadano(dict(r._mapping)) for r in rows]
