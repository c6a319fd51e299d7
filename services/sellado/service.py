"""Use cases of the sellado: seal a PDF for a tenant (HTTP or bus command), audited."""

from __future__ import annotations

import base64
import hashlib
import logging

from services.common.bus.envelope import ReceivedEvent
from services.common.tenants import Tenant
from services.common.uow import UnitOfWork
from services.sellado.domain import CodigoRechazo, Rechazo, decode_pdf
from services.sellado.pades import InvalidPdf, VisibleAppearance
from services.sellado.trust import SealedDocument, TrustServices

__all__ = [
    "DOCUMENTO_RECHAZADO",
    "DOCUMENTO_SELLADO",
    "SELLAR_DOCUMENTO",
    "responder_sellar_documento",
    "sellar_documento",
]

SELLAR_DOCUMENTO = "sellado.documento.sellar.v1"
DOCUMENTO_SELLADO = "sellado.documento.sellado.v1"
DOCUMENTO_RECHAZADO = "sellado.documento.rechazado.v1"

_log = logging.getLogger("consistorio.sellado")


async def sellar_documento(
    uow: UnitOfWork,
    *,
    trust: TrustServices,
    tenant: Tenant,
    pdf: bytes,
    nombre_fichero: str,
    motivo: str | None = None,
    appearance: VisibleAppearance | None = None,
) -> SealedDocument:
    """Seals ``pdf`` with the tenant's own seal and records who sealed what."""
    if tenant.ine_code != uow.tenant_id:
        # The key is chosen by the transaction's tenant, never by the caller.
        raise PermissionError("el sello solo puede ser el de la propia entidad")
    try:
        sealed = await trust.seal(tenant, pdf, motivo=motivo, appearance=appearance)
    except FileNotFoundError as exc:
        raise Rechazo(CodigoRechazo.SIN_CERTIFICADO, str(exc)) from exc
    except InvalidPdf as exc:
        codigo = CodigoRechazo.PDF_CIFRADO if "cifrado" in str(exc) else CodigoRechazo.PDF_NO_VALIDO
        raise Rechazo(codigo, str(exc)) from exc
    uow.audit(
        action="sellar",
        entity="documento",
        entity_id=sealed.sha256,
        new={
            "nombre_fichero": nombre_fichero,
            "sha256_original": hashlib.sha256(pdf).hexdigest(),
            "sha256_sellado": sealed.sha256,
            "firmante": sealed.firmante,
            "sello_tiempo": sealed.sello_tiempo.isoformat(),
        },
    )
    return sealed


async def responder_sellar_documento(
    uow: UnitOfWork,
    event: ReceivedEvent,
    *,
    trust: TrustServices,
    tenant: Tenant | None,
    max_bytes: int,
) -> None:
    """Seals the PDF a ``sellar`` command carries and replies, sealed or refused, by event."""
    data = event.data
    reply = {"solicitud_id": data["solicitud_id"], "solicitante": data["solicitante"]}
    try:
        if tenant is None or not tenant.activo:
            raise Rechazo(
                CodigoRechazo.SIN_CERTIFICADO, f"la entidad {event.tenant} no está activa"
            )
        pdf = decode_pdf(data["pdf"], max_bytes=max_bytes)
        apariencia = data.get("apariencia") or {}
        appearance = None
        if apariencia.get("visible"):
            appearance = VisibleAppearance(page=int(apariencia.get("pagina", 1)) - 1)
        sealed = await sellar_documento(
            uow,
            trust=trust,
            tenant=tenant,
            pdf=pdf,
            nombre_fichero=data["nombre_fichero"],
            motivo=data.get("motivo"),
            appearance=appearance,
        )
        if len(sealed.pdf) > max_bytes:
            raise Rechazo(
                CodigoRechazo.DEMASIADO_GRANDE, f"el PDF sellado supera {max_bytes} bytes"
            )
    except Rechazo as refusal:
        _log.info("seal command %s refused: %s", data["solicitud_id"], refusal.motivo)
        uow.emit(
            DOCUMENTO_RECHAZADO,
            {**reply, "motivo": refusal.motivo[:1000], "codigo": refusal.codigo.value},
            subject=data["solicitud_id"],
        )
        return
    uow.emit(
        DOCUMENTO_SELLADO,
        {
            **reply,
            "nombre_fichero": data["nombre_fichero"],
            "pdf": base64.b64encode(sealed.pdf).decode("ascii"),
            "sha256": sealed.sha256,
            "firmante": sealed.firmante,
            "sello_tiempo": sealed.sello_tiempo.isoformat(),
            "perfil": "PAdES-B-T",
        },
        subject=data["solicitud_id"],
    )
