"""Pure rules of the sellado: what may be sealed and how a refusal is named."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum

__all__ = ["PDF_MAGIC", "CodigoRechazo", "Rechazo", "decode_pdf", "looks_like_pdf"]

PDF_MAGIC = b"%PDF-"


class CodigoRechazo(StrEnum):
    """Why a seal command was refused (the ``codigo`` of ``sellado.documento.rechazado.v1``)."""

    PDF_NO_VALIDO = "pdf-no-valido"
    PDF_CIFRADO = "pdf-cifrado"
    DEMASIADO_GRANDE = "demasiado-grande"
    SIN_CERTIFICADO = "sin-certificado"
    ERROR_INTERNO = "error-interno"


class Rechazo(ValueError):
    """A document the sellado will not seal, with the code the requester receives."""

    def __init__(self, codigo: CodigoRechazo, motivo: str) -> None:
        super().__init__(motivo)
        self.codigo = codigo
        self.motivo = motivo


def looks_like_pdf(data: bytes) -> bool:
    """A PDF starts with ``%PDF-`` within its first KiB (ISO 32000, 7.5.2 tolerates junk)."""
    return PDF_MAGIC in data[:1024]


def decode_pdf(encoded: str, *, max_bytes: int) -> bytes:
    """Decodes the base64 PDF of a command, refusing oversize or non-PDF content."""
    if len(encoded) > (max_bytes * 4) // 3 + 4:
        raise Rechazo(CodigoRechazo.DEMASIADO_GRANDE, f"el PDF supera {max_bytes} bytes")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Rechazo(CodigoRechazo.PDF_NO_VALIDO, "el campo pdf no es base64 válido") from exc
    if len(data) > max_bytes:
        raise Rechazo(CodigoRechazo.DEMASIADO_GRANDE, f"el PDF supera {max_bytes} bytes")
    if not looks_like_pdf(data):
        raise Rechazo(CodigoRechazo.PDF_NO_VALIDO, "el contenido no es un PDF")
    return data
