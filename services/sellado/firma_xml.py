"""The XML signature command: a service sends an XML, the sellado answers it signed (XAdES-T).

The tramitador never holds a key: it sends ``sellado.xml.firmar.v1`` with the
índice electrónico of an expediente and gets back ``sellado.xml.firmado.v1``
with the same document signed by the council's seal, enveloped, and time-stamped
by our TSA (see :mod:`services.sellado.xades`), or ``sellado.xml.rechazado.v1``
saying why not. The key is chosen by the envelope's tenant, never by the caller.
"""

from __future__ import annotations

import base64
import binascii
import logging
from enum import StrEnum

from services.common.bus.envelope import ReceivedEvent
from services.common.tenants import Tenant
from services.common.uow import UnitOfWork
from services.sellado.sello_tiempo import RechazoSello
from services.sellado.trust import TrustServices, common_name
from services.sellado.xades import XmlNoValido

__all__ = [
    "FIRMAR_XML",
    "XML_FIRMADO",
    "XML_RECHAZADO",
    "CodigoRechazoXml",
    "responder_firmar_xml",
]

FIRMAR_XML = "sellado.xml.firmar.v1"
XML_FIRMADO = "sellado.xml.firmado.v1"
XML_RECHAZADO = "sellado.xml.rechazado.v1"
MAX_XML_BYTES = 16 * 1024 * 1024

_log = logging.getLogger("consistorio.sellado.firma_xml")


class CodigoRechazoXml(StrEnum):
    """Why an XML was not signed (the ``codigo`` of ``sellado.xml.rechazado.v1``)."""

    XML_NO_VALIDO = "xml-no-valido"
    DEMASIADO_GRANDE = "demasiado-grande"
    SIN_CERTIFICADO = "sin-certificado"
    ERROR_INTERNO = "error-interno"


class _Rechazo(Exception):
    def __init__(self, codigo: CodigoRechazoXml, motivo: str) -> None:
        super().__init__(motivo)
        self.codigo = codigo
        self.motivo = motivo


def _decode(encoded: str) -> bytes:
    if len(encoded) > (MAX_XML_BYTES * 4) // 3 + 4:
        raise _Rechazo(CodigoRechazoXml.DEMASIADO_GRANDE, f"el XML supera {MAX_XML_BYTES} bytes")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Rechazo(CodigoRechazoXml.XML_NO_VALIDO, "el campo xml no es base64 válido") from exc


async def responder_firmar_xml(
    uow: UnitOfWork, event: ReceivedEvent, *, trust: TrustServices, tenant: Tenant | None
) -> None:
    """Signs the XML a ``firmar`` command carries with the tenant's seal and our TSA, and
    replies by event, signed or refused; the signature is audited."""
    data = event.data
    reply = {"solicitud_id": data["solicitud_id"], "solicitante": data["solicitante"]}
    try:
        if tenant is None or not tenant.activo:
            raise _Rechazo(
                CodigoRechazoXml.SIN_CERTIFICADO, f"la entidad {event.tenant} no está activa"
            )
        xml = _decode(data["xml"])
        try:
            keypair = trust.pki.seal_for(tenant.ine_code, tenant.nombre)
        except FileNotFoundError as exc:
            raise _Rechazo(CodigoRechazoXml.SIN_CERTIFICADO, str(exc)) from exc
        try:
            # In the document workers when the sellado has them; the TSA's token here.
            firma = await trust.firmar_xml(tenant, xml)
        except XmlNoValido as exc:
            raise _Rechazo(CodigoRechazoXml.XML_NO_VALIDO, str(exc)) from exc
        except RechazoSello as exc:
            raise _Rechazo(CodigoRechazoXml.ERROR_INTERNO, exc.motivo) from exc
    except _Rechazo as refusal:
        _log.info("xml signature %s refused: %s", data["solicitud_id"], refusal.motivo)
        uow.emit(
            XML_RECHAZADO,
            {**reply, "motivo": refusal.motivo[:1000], "codigo": refusal.codigo.value},
            subject=data["solicitud_id"],
        )
        return
    firmante = common_name(keypair.certificate)
    uow.audit(
        action="firmar-xml",
        entity="documento",
        entity_id=firma.sha256,
        new={
            "solicitante": data["solicitante"],
            "solicitud_id": data["solicitud_id"],
            "sha256_firmado": firma.sha256,
            "firmante": firmante,
            "sello_tiempo": firma.sello_tiempo.gen_time.isoformat(),
        },
    )
    uow.emit(
        XML_FIRMADO,
        {
            **reply,
            "xml": base64.b64encode(firma.xml).decode("ascii"),
            "sha256": firma.sha256,
            "firmante": firmante,
            "sello_tiempo": firma.sello_tiempo.gen_time.isoformat(),
            "perfil": "XAdES-T",
        },
        subject=data["solicitud_id"],
    )
