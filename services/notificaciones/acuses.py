"""The acuse (certificación) of a notification's outcome, issued through the repositorio.

When a notification becomes ``practicada``, ``rechazada`` or ``expirada``, its own
event reaches this consumer, which renders a one-page certificación (who notified
what to whom, how and when, with the legal date) in the process's document workers
(a thread when it is given none), and asks the
repositorio to issue it with ``repositorio.documento.emitir.v1``: stored with ENI
metadata, given a CSV, sealed with the council's seal, verifiable at
``/verificar/{csv}``. The repositorio's answer (``emitido`` or ``emision.fallida``)
settles the acuse's row. One acuse per notification: a redelivered event is skipped.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.bus.consumer import PermanentFailure
from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool, in_documents
from services.common.tenants import TenantDirectory
from services.common.uow import UnitOfWork
from services.notificaciones.impresos import latin1
from services.notificaciones.models import acuses, notificaciones

__all__ = [
    "EMISION_FALLIDA",
    "EMITIR_DOCUMENTO",
    "DOCUMENTO_EMITIDO",
    "pedir_acuse",
    "registrar_emision",
    "render_acuse",
]

EMITIR_DOCUMENTO = "repositorio.documento.emitir.v1"
DOCUMENTO_EMITIDO = "repositorio.documento.emitido.v1"
EMISION_FALLIDA = "repositorio.emision.fallida.v1"
SOLICITANTE = "notificaciones"
# Fixed, so a redelivered event asks with the same id and the repositorio answers once.
_SOLICITUDES = uuid.uuid5(uuid.NAMESPACE_URL, "https://consistorio.es/notificaciones/acuses")

_log = logging.getLogger("consistorio.notificaciones.acuses")

_TITULOS = {
    "practicada": "practicada",
    "rechazada": "rechazada",
    "expirada": "rechazada por haber transcurrido diez días naturales sin acceder (art. 43.2)",
}
_VIAS = {
    "acceso": "acceso a su contenido en la sede electrónica",
    "entrega": "entrega en papel por el operador postal",
    "publicacion": "anuncio en el Boletín Oficial del Estado (art. 44)",
    "rechazo": "rechazo expreso en la sede electrónica (art. 41.5)",
    "rehusada": "rehúse de la entrega en papel (art. 41.5)",
}


def render_acuse(fila: dict[str, Any], evento: dict[str, Any], entidad: str) -> bytes:
    """The certificación of a notification's outcome, one A4 page (pure, CPU-bound).

    Top-level with plain arguments, so a document worker runs it (core fonts: nothing
    to load per process)."""
    interesado = fila["interesado"]
    estado = str(fila["estado"])
    via = _VIAS.get(str(evento.get("via", "")), "")
    lineas = [
        f"Notificación: {fila['id']}",
        f"Estado: {_TITULOS.get(estado, estado)}" + (f", por {via}" if via else ""),
        f"Fecha y hora: {evento['fecha']}",
        f"Fecha a efectos de plazos: {evento['fecha_legal']} (los plazos se cuentan desde el "
        "día siguiente)",
        f"Destinatario: {interesado['tipo_identificador']} {interesado['identificador']}",
        f"Concepto: {fila['concepto']}",
        f"Expediente: {fila['expediente_id'] or '-'}",
        f"Documento notificado: {fila['documento_id']} (versión {fila['documento_version']})",
    ]
    if evento.get("accedida_por"):
        lineas.append(f"Accedió: {evento['accedida_por']}")
    if fila.get("puesta_en"):
        lineas.append(f"Puesta a disposición: {fila['puesta_en'].isoformat()}")
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 14)
    pdf.set_xy(20, 20)
    pdf.cell(0, 8, latin1(entidad))
    pdf.set_xy(20, 32)
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 8, latin1("CERTIFICACIÓN DE NOTIFICACIÓN"))
    pdf.set_font("helvetica", "", 10)
    pdf.set_xy(20, 48)
    pdf.multi_cell(170, 6, latin1("\n".join(lineas)))
    pdf.set_xy(20, 130)
    pdf.multi_cell(
        170,
        6,
        latin1(
            "Se certifica el resultado de la notificación indicada conforme a los artículos 40 "
            "a 46 de la Ley 39/2015. Cada cambio de estado consta con su sello de tiempo "
            "cualificado; este documento se puede verificar con su código seguro de "
            "verificación."
        ),
    )
    return bytes(pdf.output())


async def pedir_acuse(
    uow: UnitOfWork,
    event: ReceivedEvent,
    *,
    tenants: TenantDirectory,
    documents: CpuPool | None = None,
) -> None:
    """A notification reached its outcome: render its acuse (in the document workers
    ``documents``) and ask the repositorio to issue it."""
    data = event.data
    notificacion_id = str(data["notificacion_id"])
    fila = (
        await uow.session.execute(
            select(notificaciones).where(notificaciones.c.id == notificacion_id)
        )
    ).first()
    if fila is None:
        raise PermanentFailure(f"la notificación {notificacion_id} no existe en esta entidad")
    existente = (
        await uow.session.execute(
            select(acuses.c.notificacion_id).where(acuses.c.notificacion_id == notificacion_id)
        )
    ).first()
    if existente is not None:
        return
    tenant = await tenants.get(uow.tenant_id)
    if tenant is None:
        raise PermanentFailure(f"la entidad {uow.tenant_id} no existe")
    row = dict(fila._mapping)
    pdf = await in_documents(documents, uow.tenant_id, render_acuse, row, data, tenant.nombre)
    solicitud = str(uuid.uuid5(_SOLICITUDES, notificacion_id))
    ahora = datetime.now(UTC)
    uow.emit(
        EMITIR_DOCUMENTO,
        {
            "solicitud_id": solicitud,
            "solicitante": SOLICITANTE,
            "nombre_fichero": f"acuse-notificacion-{notificacion_id}.pdf",
            "pdf": base64.b64encode(pdf).decode("ascii"),
            "metadatos": {
                "organo": tenant.dir3,
                "origen": "administracion",
                "estado_elaboracion": "EE01",
                "tipo_documental": "TD11",
            },
        },
        subject=notificacion_id,
    )
    uow.defer(
        pg_insert(acuses)
        .values(
            notificacion_id=notificacion_id,
            tenant_id=uow.tenant_id,
            solicitud_id=solicitud,
            hito=row["estado"],
            estado="pendiente",
            solicitado_en=ahora,
            actualizado_en=ahora,
        )
        .on_conflict_do_nothing()
    )


async def registrar_emision(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The repositorio's answer about an acuse we asked for: its CSV, or why it failed."""
    data = event.data
    if data.get("solicitante") != SOLICITANTE:
        return
    try:
        solicitud = str(uuid.UUID(str(data.get("solicitud_id"))))
    except ValueError:
        return
    fila = (
        await uow.session.execute(
            select(acuses).where(acuses.c.solicitud_id == solicitud).with_for_update()
        )
    ).first()
    if fila is None or fila.estado != "pendiente":
        _log.info("emisión reply %s answers no pending acuse; skipped", solicitud)
        return
    cambios: dict[str, Any] = {"actualizado_en": datetime.now(UTC)}
    if str(event.name) == DOCUMENTO_EMITIDO:
        cambios.update(
            estado="emitido",
            documento_id=str(data["documento_id"]),
            version=int(data["version"]),
            csv=str(data["csv"]),
            url_verificacion=str(data["url_verificacion"]),
        )
    else:
        cambios.update(estado="fallido", motivo=str(data.get("motivo", "emisión fallida")))
    uow.defer(update(acuses).where(acuses.c.solicitud_id == solicitud).values(**cambios))
