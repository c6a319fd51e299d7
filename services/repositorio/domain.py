"""Pure rules of the repositorio: ENI metadata of a documento electrónico, its identifier
and format, file names, and the HTTP caching and range rules of a download.

The ENI vocabulary follows the NTI de Documento electrónico (Resolución de 19 de
julio de 2011) and its XSD ``metadatosDocumentoEni.xsd`` (v1.0). No I/O, no framework.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

__all__ = [
    "MIME_SERVIDOS",
    "PATRON_CSV",
    "VERSION_NTI",
    "Contenido",
    "EstadoElaboracion",
    "EstadoEmision",
    "Formato",
    "OrigenDocumento",
    "RangoNoSatisfacible",
    "TipoDocumental",
    "anio_captura",
    "content_disposition",
    "etag_de",
    "fecha_captura",
    "filename_from_disposition",
    "id_especifico",
    "identificador_eni",
    "if_none_match_coincide",
    "nombre_de_fichero",
    "nombre_pdf",
    "normalizar_csv",
    "parse_range",
    "resolver_formato",
    "serie_versiones",
    "tenant_timezone",
    "validate_dir3",
    "validate_identificador_eni",
]

# The XSD's VersionNTI is an anyURI; this is the namespace of documento-e v1.0.
VERSION_NTI = "http://administracionelectronica.gob.es/ENI/XSD/v1.0/documento-e"

_DIR3 = re.compile(r"^[A-Z][A-Z0-9]{8}$")
# ES_<Órgano>_<AAAA>_<ID_específico>: DIR3 code (9), capture year (4), 30 alphanumerics.
_IDENTIFICADOR = re.compile(r"^ES_[A-Z][A-Z0-9]{8}_[0-9]{4}_[A-Za-z0-9]{30}$")
_ID_ESPECIFICO_LEN = 30
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CANARIAS = ("35", "38")  # Las Palmas, Santa Cruz de Tenerife
_NOMBRE_MAX = 255
# Clocks of scanners and client machines drift; a capture a little "ahead" is not an error.
_TOLERANCIA_RELOJ = timedelta(minutes=5)


@dataclass(frozen=True)
class Contenido:
    """The stored bytes of one version and how to serve them."""

    sha256: str
    tamano: int
    mime: str
    nombre: str
    formato: str


class OrigenDocumento(StrEnum):
    """Who made the document (the XSD's boolean OrigenCiudadanoAdministracion)."""

    CIUDADANO = "ciudadano"
    ADMINISTRACION = "administracion"


class EstadoElaboracion(StrEnum):
    """ValorEstadoElaboracion: whether the document is an original or which kind of copy."""

    EE01 = "EE01"
    EE02 = "EE02"
    EE03 = "EE03"
    EE04 = "EE04"
    EE99 = "EE99"

    @property
    def descripcion(self) -> str:
        """The state's name in the NTI, for people."""
        return _ESTADOS[self]

    @property
    def requiere_documento_origen(self) -> bool:
        """Copies with a change of format or partial copies name the document they copy."""
        return self in (EstadoElaboracion.EE02, EstadoElaboracion.EE04)


_ESTADOS = {
    EstadoElaboracion.EE01: "Original",
    EstadoElaboracion.EE02: "Copia electrónica auténtica con cambio de formato",
    EstadoElaboracion.EE03: "Copia electrónica auténtica de documento papel",
    EstadoElaboracion.EE04: "Copia electrónica parcial auténtica",
    EstadoElaboracion.EE99: "Otros",
}


class TipoDocumental(StrEnum):
    """The XSD's tipoDocumental: decision, transmission, record, judgement, citizen, other."""

    TD01 = "TD01"
    TD02 = "TD02"
    TD03 = "TD03"
    TD04 = "TD04"
    TD05 = "TD05"
    TD06 = "TD06"
    TD07 = "TD07"
    TD08 = "TD08"
    TD09 = "TD09"
    TD10 = "TD10"
    TD11 = "TD11"
    TD12 = "TD12"
    TD13 = "TD13"
    TD14 = "TD14"
    TD15 = "TD15"
    TD16 = "TD16"
    TD17 = "TD17"
    TD18 = "TD18"
    TD19 = "TD19"
    TD20 = "TD20"
    TD99 = "TD99"

    @property
    def descripcion(self) -> str:
        """The type's name in the NTI, for people."""
        return _TIPOS[self]


_TIPOS = {
    TipoDocumental.TD01: "Resolución",
    TipoDocumental.TD02: "Acuerdo",
    TipoDocumental.TD03: "Contrato",
    TipoDocumental.TD04: "Convenio",
    TipoDocumental.TD05: "Declaración",
    TipoDocumental.TD06: "Comunicación",
    TipoDocumental.TD07: "Notificación",
    TipoDocumental.TD08: "Publicación",
    TipoDocumental.TD09: "Acuse de recibo",
    TipoDocumental.TD10: "Acta",
    TipoDocumental.TD11: "Certificado",
    TipoDocumental.TD12: "Diligencia",
    TipoDocumental.TD13: "Informe",
    TipoDocumental.TD14: "Solicitud",
    TipoDocumental.TD15: "Denuncia",
    TipoDocumental.TD16: "Alegación",
    TipoDocumental.TD17: "Recursos",
    TipoDocumental.TD18: "Comunicación ciudadano",
    TipoDocumental.TD19: "Factura",
    TipoDocumental.TD20: "Otros incautados",
    TipoDocumental.TD99: "Otros",
}


@dataclass(frozen=True)
class Formato:
    """A file format of the NTI de Catálogo de estándares (the ENI NombreFormato)."""

    nombre: str
    mime: str
    extensiones: tuple[str, ...]
    otros_mime: tuple[str, ...] = ()


# Formats the NTI de Catálogo de estándares admits for documents, with the MIME types
# clients actually send for them. Anything else is refused: it could not be exchanged.
_FORMATOS = (
    Formato("PDF", "application/pdf", ("pdf",), ("application/x-pdf",)),
    Formato("XML", "application/xml", ("xml",), ("text/xml",)),
    Formato("XSIG", "application/xml", ("xsig",)),
    Formato("CSIG", "application/pkcs7-signature", ("csig", "p7s")),
    Formato("ODT", "application/vnd.oasis.opendocument.text", ("odt",)),
    Formato("ODS", "application/vnd.oasis.opendocument.spreadsheet", ("ods",)),
    Formato("ODP", "application/vnd.oasis.opendocument.presentation", ("odp",)),
    Formato("ODG", "application/vnd.oasis.opendocument.graphics", ("odg",)),
    Formato(
        "DOCX",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ("docx",),
    ),
    Formato("XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",)),
    Formato(
        "PPTX",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ("pptx",),
    ),
    Formato("TXT", "text/plain", ("txt",)),
    Formato("CSV", "text/csv", ("csv",)),
    Formato("RTF", "application/rtf", ("rtf",), ("text/rtf",)),
    Formato("HTML", "text/html", ("html", "htm")),
    Formato("XHTML", "application/xhtml+xml", ("xhtml",)),
    Formato("JPEG", "image/jpeg", ("jpg", "jpeg"), ("image/pjpeg",)),
    Formato("PNG", "image/png", ("png",)),
    Formato("TIFF", "image/tiff", ("tif", "tiff")),
    Formato("SVG", "image/svg+xml", ("svg",)),
    Formato("ZIP", "application/zip", ("zip",), ("application/x-zip-compressed",)),
    Formato("GZIP", "application/gzip", ("gz",), ("application/x-gzip",)),
    Formato("MP3", "audio/mpeg", ("mp3",)),
    Formato("OGG", "audio/ogg", ("ogg", "oga"), ("video/ogg", "application/ogg")),
    Formato("MP4", "video/mp4", ("mp4",), ("audio/mp4",)),
    Formato("WEBM", "video/webm", ("webm",)),
)
_POR_MIME = {m: f for f in _FORMATOS for m in (f.mime, *f.otros_mime) if f.nombre != "XSIG"}
# What a stored version is served as: the MIME type of its format.
MIME_SERVIDOS = tuple(dict.fromkeys(f.mime for f in _FORMATOS))
_POR_EXTENSION = {e: f for f in _FORMATOS for e in f.extensiones}
# Said by clients that do not know the type: the file name decides then.
_MIME_GENERICOS = ("application/octet-stream", "binary/octet-stream", "")


def validate_dir3(code: str) -> str:
    """A DIR3 unit code: a letter and eight letters or digits (e.g. ``L01030149``)."""
    normalized = code.strip().upper()
    if not _DIR3.match(normalized):
        raise ValueError("código DIR3 no válido: una letra y ocho letras o cifras")
    return normalized


def validate_identificador_eni(value: str) -> str:
    """An ENI document identifier ``ES_<DIR3>_<AAAA>_<30 alphanumerics>``."""
    normalized = value.strip()
    if not _IDENTIFICADOR.match(normalized):
        raise ValueError("identificador ENI no válido: ES_<órgano DIR3>_<año>_<30 letras o cifras>")
    return normalized


def tenant_timezone(ine_code: str) -> ZoneInfo:
    """The legal time zone of an entity: Canarias keeps its own hour."""
    return ZoneInfo("Atlantic/Canary" if ine_code[:2] in _CANARIAS else "Europe/Madrid")


def anio_captura(fecha_captura: datetime, ine_code: str) -> int:
    """The AAAA of the identifier: the capture's year in the entity's local time."""
    if fecha_captura.tzinfo is None:
        raise ValueError("la fecha de captura debe llevar zona horaria")
    return fecha_captura.astimezone(tenant_timezone(ine_code)).year


def fecha_captura(declarada: datetime | None, ahora: datetime) -> datetime:
    """The capture date: the one declared, or now; a capture cannot lie in the future."""
    if declarada is None:
        return ahora
    if declarada.tzinfo is None:
        raise ValueError("la fecha de captura debe llevar zona horaria")
    if declarada > ahora + _TOLERANCIA_RELOJ:
        raise ValueError("la fecha de captura no puede ser posterior al momento de almacenarlo")
    return declarada


def serie_versiones(documento_id: str) -> str:
    """The gapless counter series that numbers a documento's versions (1, 2, 3...)."""
    return f"version:{uuid.UUID(documento_id)}"


def id_especifico(documento_id: str) -> str:
    """The 30-character ID_específico of a documento, derived from its UUID.

    The UUID's 128 bits written in base 36 take at most 25 characters; left-padded
    with zeros to the 30 the NTI fixes, the identifier is unique as the UUID is
    and leads back to the documento.
    """
    value = uuid.UUID(documento_id).int
    digits = ""
    while value:
        value, rest = divmod(value, 36)
        digits = _BASE36[rest] + digits
    return digits.rjust(_ID_ESPECIFICO_LEN, "0")


def identificador_eni(organo: str, anio: int, documento_id: str) -> str:
    """The document's ENI identifier: ``ES_<órgano>_<AAAA>_<ID_específico>``."""
    return validate_identificador_eni(
        f"ES_{validate_dir3(organo)}_{anio:04d}_{id_especifico(documento_id)}"
    )


def _extension(nombre: str | None) -> str:
    if not nombre or "." not in nombre:
        return ""
    return nombre.rsplit(".", 1)[1].strip().lower()


def resolver_formato(mime: str | None, nombre: str | None) -> tuple[Formato, str]:
    """The ENI format of an upload and the MIME type to serve it with.

    A specific MIME type decides; a generic one (``application/octet-stream``,
    or none) leaves it to the file's extension. Raises ValueError when neither
    names a format of the catalogue.
    """
    declared = (mime or "").split(";", 1)[0].strip().lower()
    extension = _extension(nombre)
    if extension == "xsig" and declared in ("application/xml", "text/xml", *_MIME_GENERICOS):
        return _POR_EXTENSION["xsig"], "application/xml"
    if declared not in _MIME_GENERICOS:
        formato = _POR_MIME.get(declared)
        if formato is None:
            raise ValueError(
                f"formato no admitido por la NTI de Catálogo de estándares: {declared}"
            )
        return formato, declared
    formato = _POR_EXTENSION.get(extension)
    if formato is None:
        raise ValueError(
            "formato desconocido: indique el tipo MIME del fichero o una extensión admitida"
        )
    return formato, formato.mime


def nombre_de_fichero(nombre: str | None, formato: Formato) -> str:
    """A safe file name to keep and serve: no directories, no control characters.

    Browsers send a bare name, old ones a full client path; only its last
    segment is kept. Without a usable name the document gets ``documento.<ext>``.
    """
    raw = unicodedata.normalize("NFC", nombre or "")
    base = PureWindowsPath(PurePosixPath(raw).name).name
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    if not cleaned:
        return f"documento.{formato.extensiones[0]}"
    if len(cleaned) > _NOMBRE_MAX:
        stem, dot, ext = cleaned.rpartition(".")
        if dot and len(ext) < 16:
            cleaned = stem[: _NOMBRE_MAX - len(ext) - 1] + "." + ext
        else:
            cleaned = cleaned[:_NOMBRE_MAX]
    return cleaned


def content_disposition(nombre: str, *, inline: bool = False) -> str:
    """``Content-Disposition`` with an ASCII fallback and the exact name (RFC 6266).

    An attachment unless ``inline`` (only for PDFs shown to the public, which
    browsers display in their own viewer, never as a page of our origin).
    """
    tipo = "inline" if inline else "attachment"
    ascii_name = (
        unicodedata.normalize("NFKD", nombre).encode("ascii", "ignore").decode("ascii")
        or "documento"
    )
    ascii_name = ascii_name.replace("\\", "_").replace('"', "_")
    if ascii_name == nombre:
        return f'{tipo}; filename="{ascii_name}"'
    return f"{tipo}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(nombre, safe='')}"


def filename_from_disposition(value: str) -> str | None:
    """The file name of a multipart part's ``Content-Disposition`` (``filename*`` wins)."""
    star = re.search(r"filename\*\s*=\s*([^;]+)", value, re.IGNORECASE)
    if star:
        charset, _, rest = star.group(1).strip().strip('"').partition("'")
        _, _, encoded = rest.partition("'")
        try:
            return unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            pass
    plain = re.search(r'filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]*)', value, re.IGNORECASE)
    if not plain:
        return None
    if plain.group(2) is not None:
        # Only \" is unescaped: browsers send backslashes raw (old ones, whole Windows paths).
        return plain.group(2).replace('\\"', '"')
    return plain.group(1).strip()


def etag_de(sha256: str) -> str:
    """The strong ETag of a version's content: its SHA-256, quoted."""
    return f'"{sha256}"'


def if_none_match_coincide(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 asks for it)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


class RangoNoSatisfacible(ValueError):
    """A well-formed ``Range`` none of whose bytes exist (HTTP 416)."""


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` of a single ``bytes`` range over ``size`` bytes.

    ``None`` means "send the whole content": no header, a malformed one or
    several ranges (RFC 9110 lets a server ignore a Range it does not support).
    A range that starts past the end, or a zero-length suffix, raises
    :class:`RangoNoSatisfacible`.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    start, end = match.groups()
    if not start and not end:
        return None
    if not start:  # bytes=-n: the last n bytes
        suffix = int(end)
        if suffix == 0 or size == 0:
            raise RangoNoSatisfacible(f"bytes=-{suffix} sobre {size} bytes")
        return max(0, size - suffix), size - 1
    first = int(start)
    last = int(end) if end else size - 1
    if end and last < first:
        return None  # invalid, hence ignored
    if first >= size:
        raise RangoNoSatisfacible(f"el rango empieza en {first} y hay {size} bytes")
    return first, min(last, size - 1)


# --- issuing (emisión) ---------------------------------------------------------------------

# The CSV format of the platform: 25 symbols of an alphabet without 0, 1, I and O (they are
# misread in print) in five groups of five. Its check character is the csv service's
# business; a code of the right shape that was never issued is simply not found.
_CSV = re.compile(r"^[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){4}$")
# The same, as documented in OpenAPI: what normalizar_csv accepts (case, spaces around).
PATRON_CSV = r"^\s*[2-9A-HJ-NP-Za-hj-np-z]{5}(-[2-9A-HJ-NP-Za-hj-np-z]{5}){4}\s*$"


class EstadoEmision(StrEnum):
    """Where an emisión (issuing one version with a CSV and the seal) stands.

    ``pendiente``: the CSV was asked for. ``sellando``: the CSV is reserved, stamped
    on every page and the stamped PDF sent to the sellado (reserving and stamping
    commit together with the seal command, so no stored state sits between them).
    ``emitida`` and ``fallida`` are final.
    """

    PENDIENTE = "pendiente"
    SELLANDO = "sellando"
    EMITIDA = "emitida"
    FALLIDA = "fallida"

    @property
    def final(self) -> bool:
        """Whether nothing more will happen to the emisión."""
        return self in (EstadoEmision.EMITIDA, EstadoEmision.FALLIDA)


def normalizar_csv(value: str) -> str:
    """A Código Seguro de Verificación as people type it, in its canonical form.

    Surrounding spaces go and letters are upper-cased (printed codes are read
    aloud and typed in any case); anything else out of shape raises ValueError.
    """
    code = value.strip().upper()
    if not _CSV.match(code):
        raise ValueError(
            "código seguro de verificación no válido: cinco grupos de cinco letras o cifras "
            "separados por guiones (sin 0, 1, I ni O)"
        )
    return code


def nombre_pdf(nombre: str) -> str:
    """A file name that ends in ``.pdf``, as the seal command asks (``acta`` → ``acta.pdf``)."""
    if nombre.lower().endswith(".pdf"):
        return nombre
    return nombre[: _NOMBRE_MAX - 4] + ".pdf"
