"""Use cases of the expediente's documents: issue one from a template through
repositorio.documento.emitir.v1, settle the repositorio's reply, attach a stored one.

Laying a document out is CPU work: :func:`emitir_documento` renders in the process's
document workers (``documents``), in a thread when it is given none."""

from __future__ import annotations

import base64
import uuid
from datetime import date
from typing import Any

from sqlalchemy import select, update

from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool, in_documents
from services.common.tenants import tenants_table
from services.common.uow import UnitOfWork
from services.tramitador.documentos import domain
from services.tramitador.documentos.models import documentos
from services.tramitador.documentos.schemas import DocumentoRead

__all__ = [
    "DOCUMENTO_EMITIDO",
    "DOCUMENTO_EMITIR",
    "EMISION_FALLIDA",
    "adjuntar_documento",
    "emitir_documento",
    "registrar_emision",
]

DOCUMENTO_EMITIR = "repositorio.documento.emitir.v1"
DOCUMENTO_EMITIDO = "repositorio.documento.emitido.v1"
EMISION_FALLIDA = "repositorio.emision.fallida.v1"
SOLICITANTE = "tramitador"


async def _entidad(uow: UnitOfWork) -> tuple[str, str]:
    """The council's name and DIR3 code (the órgano of its documents)."""
    row = (
        await uow.session.execute(
            select(tenants_table.c.nombre, tenants_table.c.dir3).where(
                tenants_table.c.ine_code == uow.tenant_id
            )
        )
    ).one()
    return str(row.nombre), str(row.dir3)


async def emitir_documento(
    uow: UnitOfWork,
    *,
    expediente: dict[str, Any],
    definicion: dict[str, Any],
    plantilla: str,
    datos: dict[str, Any],
    fecha: date,
    documents: CpuPool | None = None,
) -> str:
    """Fills a template, lays it out as PDF and asks the repositorio to issue it with a
    CSV and the council's seal; the document shows ``emitiendo`` until the reply."""
    modelo = next(p for p in definicion.get("plantillas", []) if p["codigo"] == plantilla)
    entidad, dir3 = await _entidad(uow)
    organo = definicion.get("organo_competente") or dir3
    valores = domain.valores_de(expediente, definicion, datos, municipio=entidad, fecha=fecha)
    cuerpo = domain.rellenar(modelo["texto"], valores)
    pdf = await in_documents(
        documents,
        uow.tenant_id,
        domain.renderizar_pdf,
        entidad,
        modelo["titulo"],
        str(expediente["numero"]),
        cuerpo,
    )
    solicitud = str(uuid.uuid4())
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "expediente_id": str(expediente["id"]),
        "plantilla": plantilla,
        "titulo": modelo["titulo"],
        "origen": "plantilla",
        "estado": "emitiendo",
        "documento_id": None,
        "solicitud_id": solicitud,
    }
    uow.add(documentos, row)
    uow.emit(
        DOCUMENTO_EMITIR,
        {
            "solicitud_id": solicitud,
            "solicitante": SOLICITANTE,
            "nombre_fichero": domain.nombre_fichero(plantilla, str(expediente["numero"])),
            "pdf": base64.b64encode(pdf).decode("ascii"),
            "metadatos": {
                "organo": organo,
                "origen": "administracion",
                "estado_elaboracion": "EE01",
                "tipo_documental": modelo.get("tipo_documental", "TD99"),
            },
        },
        subject=solicitud,
    )
    return solicitud


async def registrar_emision(uow: UnitOfWork, event: ReceivedEvent) -> DocumentoRead | None:
    """Settles the repositorio's reply to one of our emitir commands (others are ignored);
    the document as it stands now, or None when the reply was not ours."""
    data = event.data
    if data.get("solicitante") != SOLICITANTE or not data.get("solicitud_id"):
        return None
    if str(event.name) == DOCUMENTO_EMITIDO:
        valores = {
            "estado": "emitido",
            "documento_id": data["documento_id"],
            "csv": data["csv"],
            "url_verificacion": data["url_verificacion"],
        }
    else:
        valores = {"estado": "fallido", "motivo": f"{data['codigo']}: {data['motivo']}"}
    row = (
        await uow.session.execute(
            update(documentos)
            .where(
                documentos.c.solicitud_id == data["solicitud_id"],
                documentos.c.estado == "emitiendo",
            )
            .values(**valores)
            .returning(documentos)
        )
    ).first()
    return None if row is None else DocumentoRead.model_validate(row._mapping)


async def adjuntar_documento(
    uow: UnitOfWork, *, expediente_id: str, documento_id: str, titulo: str
) -> DocumentoRead:
    """Attaches a document stored in the repositorio to the expediente (audited)."""
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "expediente_id": expediente_id,
        "plantilla": None,
        "titulo": titulo,
        "origen": "adjunto",
        "estado": "adjunto",
        "documento_id": documento_id.lower(),
        "solicitud_id": None,
        "csv": None,
        "url_verificacion": None,
        "motivo": None,
    }
    uow.add(documentos, row)
    uow.audit(action="adjuntar", entity="expediente", entity_id=expediente_id, new=row)
    return DocumentoRead.model_validate(row)
