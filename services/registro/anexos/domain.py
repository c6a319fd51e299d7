"""Pure rules of anexos: SICRES vocabulary, limits, names, hashes and MIME types. No I/O."""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Protocol

from services.common.nti import resolver_formato

# SIR (ORVE/GEISER) takes at most five documents with an asiento.
MAX_ANEXOS = 5


MAX_FIRMA_CHARS = 200_000


MAX_SELLO_CHARS = 50_000


# Room in a POST /asientos body beside the anexos' content: the asiento's own fields,
# and each anexo's detached signature and time-stamp token.
MARGEN_CUERPO = 1024 * 1024 + MAX_ANEXOS * (MAX_FIRMA_CHARS + MAX_SELLO_CHARS)


_OCTET_STREAM = "application/octet-stream"


_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


# Magic numbers of the formats a scanner or a form usually produces; the file name's
# extension decides first, these only name a file that has none.
_FIRMAS_MIME: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"<?xml", "application/xml"),
)


class Validez(StrEnum):
    """Validez del documento anexado (SICRES 3.0 ``Validez_Documento``)."""

    COPIA = "01"
    """Copia simple."""
    COPIA_COMPULSADA = "02"
    """Copia compulsada (auténtica) de un documento en papel."""
    COPIA_ORIGINAL = "03"
    """Copia original."""
    ORIGINAL = "04"
    """Documento original."""

    @property
    def estado_elaboracion(self) -> str:
        """El estado de elaboración ENI que le corresponde al guardarlo en el repositorio."""
        return _ESTADOS[self]


# A compulsed copy of paper is the NTI's "copia electrónica auténtica de documento papel";
# plain copies are "otros": calling them originals would be false in the ENI metadata.
_ESTADOS = {
    Validez.COPIA: "EE99",
    Validez.COPIA_COMPULSADA: "EE03",
    Validez.COPIA_ORIGINAL: "EE99",
    Validez.ORIGINAL: "EE01",
}


class TipoDocumentoAnexo(StrEnum):
    """Tipo de documento anexado (SICRES 3.0 ``Tipo_Documento``)."""

    FORMULARIO = "01"
    """Formulario: la solicitud misma."""
    DOCUMENTO_ADJUNTO = "02"
    """Documento adjunto al formulario."""
    FICHERO_TECNICO = "03"
    """Fichero técnico interno (p. ej. una firma separada)."""


class AjustesAnexos(Protocol):
    """The settings that bound anexos (``services.common.settings.Settings`` has them)."""

    @property
    def registro_max_anexo_bytes(self) -> int: ...

    @property
    def registro_max_anexos_bytes(self) -> int: ...


class AnexoConHash(Protocol):
    """What the SICRES Hash of a recorded anexo is computed from (``schemas.AnexoRead``)."""

    @property
    def identificador_fichero(self) -> str: ...

    @property
    def sha256(self) -> str | None: ...

    @property
    def hash_origen(self) -> str | None: ...


@dataclass(frozen=True)
class Limites:
    """How large anexos may be: each one, and all of an asiento's together (bytes)."""

    max_anexo_bytes: int = 10 * 1024 * 1024
    max_anexos_bytes: int = 15 * 1024 * 1024

    @classmethod
    def de(cls, settings: AjustesAnexos) -> Limites:
        """The limits a deployment configured."""
        return cls(settings.registro_max_anexo_bytes, settings.registro_max_anexos_bytes)


def max_cuerpo(limites: Limites) -> int:
    """The largest POST /asientos body that can hold anexos within ``limites``."""
    return 4 * math.ceil(limites.max_anexos_bytes / 3) + MARGEN_CUERPO


def _max_base64(max_bytes: int) -> int:
    return 4 * math.ceil(max_bytes / 3)


def _extension(nombre: str) -> str:
    suffix = PurePosixPath(nombre).suffix
    return suffix if 1 < len(suffix) <= 10 and suffix[1:].isalnum() else ""


def identificador_fichero(numero: str, orden: int, nombre: str) -> str:
    """Identificador_Fichero of an asiento's anexo, e.g. ``E_2026_000001_0001.pdf``.

    Built from the asiento's number and the anexo's order, as SIR builds its own from
    the exchange's id: unique in the asiento, at most 20 + 5 + 10 characters.
    """
    return f"{numero.replace('/', '_')}_{orden:04d}{_extension(nombre)}"[:50]


def sha256_de_hash(hash_b64: str) -> str | None:
    """The SHA-256 a SICRES ``Hash`` holds (raw digest or hex digest, base64), or None."""
    try:
        raw = base64.b64decode("".join(hash_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    # A hex digest in base64 first (the example files' way): the text's length says
    # which algorithm, and an MD5's 32 hex characters are not a raw SHA-256.
    texto = raw.decode("ascii", "replace").strip()
    if re.fullmatch(r"[0-9a-fA-F]+", texto):
        return texto.lower() if _HEX.match(texto) else None
    return raw.hex() if len(raw) == 32 else None


def hash_sicres(anexo: AnexoConHash) -> str:
    """The SICRES ``Hash`` of an anexo: base64 of the raw SHA-256 digest.

    An anexo received without content and with a Hash that is not a SHA-256 passes
    that Hash on as it came.
    """
    if anexo.sha256 is not None:
        return base64.b64encode(bytes.fromhex(anexo.sha256)).decode("ascii")
    if anexo.hash_origen is not None:
        return anexo.hash_origen
    raise ValueError(f"el anexo {anexo.identificador_fichero} no tiene Hash")


def _sniff(contenido: bytes) -> str:
    if b"%PDF-" in contenido[:1024]:
        return "application/pdf"
    for firma, mime in _FIRMAS_MIME:
        if contenido.startswith(firma):
            return mime
    return _OCTET_STREAM


def resolver_mime(declarado: str | None, nombre: str, contenido: bytes) -> str:
    """The MIME type an anexo is stored with; ValueError when no NTI format fits it.

    A declared type decides (as the repositorio reads it); without one, the file
    name's extension, and without a known extension, the content's first bytes.
    """
    if declarado is not None and declarado != _OCTET_STREAM:
        return resolver_formato(declarado, nombre)[1]
    try:
        return resolver_formato(None, nombre)[1]
    except ValueError:
        return resolver_formato(_sniff(contenido), nombre)[1]


@dataclass(frozen=True)
class AnexoSicres:
    """A De_Anexo block; ``contenido`` is None when the file came without its bytes."""

    nombre_fichero: str
    identificador_fichero: str
    tipo_documento: str
    hash: str
    tipo_mime: str | None
    contenido: bytes | None
    validez: str | None
    identificador_documento_firmado: str | None
    observaciones: str | None
    firma: bytes | None = None
    sello_tiempo: bytes | None = None
