"""Issuing the carta de pago and the justificante de pago through the documentary chain.

pagos does not sign or store documents: it renders the PDF and sends the
repositorio the command ``repositorio.documento.emitir.v1``; the repositorio
reserves a CSV, stamps it, has the sellado seal it and answers
``repositorio.documento.emitido.v1`` (or ``repositorio.emision.fallida.v1``),
which pagos records. The carta de pago is asked for when a liquidación is issued,
the justificante when it is paid, each by a consumer of pagos' own event so that
neither the issuing nor the payment waits for a PDF. The PDF is rendered in the
process's document workers (``documents``), in a thread when it is given none.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.cpu import CpuPool, in_documents
from services.common.errors import NotFound
from services.common.tenants import Tenant
from services.common.uow import UnitOfWork
from services.pagos import cartas, service
from services.pagos.models import documentos

__all__ = [
    "DOCUMENTO_EMITIDO",
    "EMISION_FALLIDA",
    "EMITIR_DOCUMENTO",
    "consultar_documento",
    "registrar_respuesta",
    "solicitar_documento",
]

EMITIR_DOCUMENTO = "repositorio.documento.emitir.v1"
DOCUMENTO_EMITIDO = "repositorio.documento.emitido.v1"
EMISION_FALLIDA = "repositorio.emision.fallida.v1"

_log = logging.getLogger("consistorio.pagos")


async def solicitar_documento(
    uow: UnitOfWork,
    *,
    liquidacion_id: str,
    tipo: str,
    entidad: Tenant,
    documents: CpuPool | None = None,
) -> str | None:
    """Renders one document of a liquidación and asks the repositorio to issue it, once.

    Answers the solicitud id, or None when it had already been asked for.
    """
    solicitud = cartas.solicitud_id(liquidacion_id, tipo)
    pedida = await uow.session.execute(
        select(documentos.c.solicitud_id).where(documentos.c.solicitud_id == solicitud)
    )
    if pedida.first() is not None:
        return None
    fila = await service.cargar_liquidacion(uow.session, uow.tenant_id, liquidacion_id)
    liquidacion = service.vista(fila)
    # Rendering is CPU work: in the document workers, off the event loop. It comes before
    # the claim: the claim's row references the liquidación (a key-share lock on it), and
    # a lock held while a worker renders would make the vencimientos skip the liquidación.
    if tipo == cartas.Tipo.CARTA_DE_PAGO:
        pdf = await in_documents(
            documents, uow.tenant_id, cartas.render_carta_de_pago, liquidacion, entidad.nombre
        )
    else:
        pdf = await in_documents(
            documents,
            uow.tenant_id,
            cartas.render_justificante_pago,
            liquidacion,
            entidad.nombre,
            fila.pagada_at,
        )
    reclamada = await uow.session.execute(
        pg_insert(documentos)
        .values(
            solicitud_id=solicitud,
            tenant_id=uow.tenant_id,
            liquidacion_id=liquidacion_id,
            tipo=tipo,
            estado="pendiente",
        )
        .on_conflict_do_nothing()
        .returning(documentos.c.solicitud_id)
    )
    if reclamada.first() is None:
        # Another delivery of the same event claimed it meanwhile.
        return None
    uow.emit(
        EMITIR_DOCUMENTO,
        {
            "solicitud_id": solicitud,
            "solicitante": cartas.SOLICITANTE,
            "nombre_fichero": cartas.nombre_fichero(liquidacion, tipo),
            "pdf": base64.b64encode(pdf).decode("ascii"),
            "metadatos": {
                "organo": entidad.dir3,
                "origen": "administracion",
                "estado_elaboracion": "EE01",
                "tipo_documental": cartas.tipo_documental(tipo),
            },
        },
        subject=liquidacion_id,
    )
    uow.audit(
        action=f"solicitar-{tipo.replace('_', '-')}",
        entity="liquidacion",
        entity_id=liquidacion_id,
        new={"solicitud_id": solicitud},
    )
    return solicitud


async def registrar_respuesta(uow: UnitOfWork, *, evento: str, datos: dict[str, Any]) -> None:
    """Records the repositorio's answer to one of pagos' requests (others are ignored)."""
    if datos.get("solicitante") != cartas.SOLICITANTE or not datos.get("solicitud_id"):
        return
    fila = (
        await uow.session.execute(
            select(documentos)
            .where(
                documentos.c.tenant_id == uow.tenant_id,
                documentos.c.solicitud_id == str(datos["solicitud_id"]),
            )
            .with_for_update()
        )
    ).first()
    if fila is None or fila.estado == "emitido":
        return
    if evento == DOCUMENTO_EMITIDO:
        cambios: dict[str, Any] = {
            "estado": "emitido",
            "documento_id": str(datos["documento_id"]),
            "csv": str(datos["csv"]),
            "url_verificacion": str(datos["url_verificacion"]),
            "motivo": None,
        }
    else:
        cambios = {"estado": "fallido", "motivo": str(datos.get("motivo", ""))[:1000]}
        _log.warning("issuing %s of %s failed: %s", fila.tipo, fila.liquidacion_id, cambios)
    await uow.session.execute(
        update(documentos)
        .where(documentos.c.solicitud_id == fila.solicitud_id)
        .values(**cambios, resuelto_at=func.now())
    )
    uow.audit(
        action=f"{cambios['estado']}-{fila.tipo.replace('_', '-')}",
        entity="liquidacion",
        entity_id=fila.liquidacion_id,
        old={"estado": fila.estado},
        new=cambios,
    )


async def consultar_documento(
    session: AsyncSession,
    *,
    tenant_id: str,
    liquidacion_id: str,
    tipo: str,
    obligado: str | None,
    base_url: str,
) -> dict[str, Any]:
    """Where one document of a liquidación stands, and where to download it once issued."""
    await service.consultar_liquidacion(
        session, tenant_id=tenant_id, liquidacion_id=liquidacion_id, obligado=obligado
    )
    fila = (
        await session.execute(
            select(documentos).where(
                documentos.c.tenant_id == tenant_id,
                documentos.c.liquidacion_id == liquidacion_id,
                documentos.c.tipo == tipo,
            )
        )
    ).first()
    if fila is None:
        raise NotFound(f"La liquidación {liquidacion_id} no tiene {tipo.replace('_', ' ')}.")
    vista: dict[str, Any] = {"tipo": tipo, "estado": fila.estado, "motivo": fila.motivo}
    if fila.estado == "emitido":
        vista |= {
            "csv": fila.csv,
            "url_verificacion": fila.url_verificacion,
            "url_descarga": f"{base_url.rstrip('/')}/verificar/{fila.csv}/documento",
        }
    return vista
