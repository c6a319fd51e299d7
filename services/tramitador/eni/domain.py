"""Pure rules of the expediente electrónico (NTI de Expediente electrónico, ENI v1.0).

What an expediente's identifier, state and índice are, and how an ENI document is
written, from plain values: no database, no network. The índice is written unsigned,
with an empty ``<ds:Signature Id="placeholder"/>`` where the sellado puts the council's
XAdES signature (``firmas/firma/ContenidoFirma/FirmaConCertificado``, ENI ``TF03``).

A ``documentoEni`` is written as a head, the content in base64, and a tail
(:func:`documento_partes`), so that an export streams each document's bytes
without holding them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

__all__ = [
    "DS",
    "ENI_DOC",
    "ENI_EXP",
    "FUNCIONES_RESUMEN",
    "NS",
    "VERSION_NTI_DOCUMENTO",
    "VERSION_NTI_EXPEDIENTE",
    "DocumentoEni",
    "DocumentoIndizado",
    "MetadatosExpediente",
    "documento_partes",
    "estado_eni",
    "funcion_resumen",
    "huella_eni",
    "identificador_expediente",
    "indice_sin_firmar",
    "nombre_en_zip",
]

DS = "http://www.w3.org/2000/09/xmldsig#"
_BASE = "http://administracionelectronica.gob.es/ENI/XSD/v1.0"
ENI_EXP = f"{_BASE}/expediente-e"
ENI_DOC = f"{_BASE}/documento-e"
NS = {
    "eniexp": ENI_EXP,
    "eniexpind": f"{ENI_EXP}/indice-e",
    "eniconexpind": f"{ENI_EXP}/indice-e/contenido",
    "eniexpmeta": f"{ENI_EXP}/metadatos",
    "enids": f"{_BASE}/firma",
    "enidoc": ENI_DOC,
    "enidocmeta": f"{ENI_DOC}/metadatos",
    "enifile": f"{ENI_DOC}/contenido",
    "ds": DS,
}
VERSION_NTI_EXPEDIENTE = f"{ENI_EXP}"
VERSION_NTI_DOCUMENTO = f"{ENI_DOC}"

# How the repositorio names a digest, and how the ENI índice writes its function.
FUNCIONES_RESUMEN = {"sha256": "SHA256", "sha512": "SHA512"}
_HASHES = {"SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
# Open states of an expediente are E01 (abierto); resolved or archived, E02 (cerrado).
_CERRADOS = frozenset({"resuelto", "archivado"})
_ALNUM = re.compile(r"[^A-Za-z0-9]")


def identificador_expediente(dir3: str, anio: int, secuencia: int) -> str:
    """``ES_<DIR3>_<year>_EXP_<id>``: the NTI's identifier, with the year's sequence as id."""
    return f"ES_{dir3}_{anio:04d}_EXP_{secuencia:06d}"


def estado_eni(estado: str, *, remision: bool = False) -> str:
    """E01 abierto while the expediente runs; E02 cerrado once resolved or archived; E03
    (índice para remisión cerrado) for the índice an open expediente is remitted with
    (to a court, another administration): the expediente goes on, that índice is closed.
    A closed expediente's índice stays E02, remitted or not."""
    if estado in _CERRADOS:
        return "E02"
    return "E03" if remision else "E01"


def funcion_resumen(algoritmo: str) -> str:
    """The índice's ``FuncionResumen`` for the repositorio's algorithm name (sha256, sha512)."""
    try:
        return FUNCIONES_RESUMEN[algoritmo.lower().replace("-", "")]
    except KeyError:
        raise ValueError(f"función resumen no admitida: {algoritmo}") from None


def huella_eni(funcion: str, contenido: bytes) -> str:
    """The ``ValorHuella`` of ``contenido``: base64 of its digest with ``funcion``."""
    return base64.b64encode(_HASHES[funcion](contenido).digest()).decode("ascii")


def nuevo_resumen(funcion: str) -> hashlib._Hash:
    """A running digest of ``funcion`` (SHA256, SHA512), to hash a stream."""
    return _HASHES[funcion]()


@dataclass(frozen=True, slots=True)
class MetadatosExpediente:
    """The NTI's metadata of an expediente (``metadatosExp``)."""

    identificador: str
    organos: tuple[str, ...]
    fecha_apertura: datetime
    clasificacion: str
    estado: str
    interesados: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DocumentoIndizado:
    """One entry of the índice: a document in its order, with its digest."""

    orden: int
    identificador: str
    huella: str  # base64 of the digest, as the índice writes it
    funcion: str  # SHA256 or SHA512
    fecha_incorporacion: datetime


def _ts(value: datetime) -> str:
    """xsd:dateTime in UTC with seconds (an aware value is required)."""
    if value.tzinfo is None:
        raise ValueError("a date-time of the ENI must carry its offset")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _sub(parent: etree._Element, prefix: str, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(prefix, name))
    if text is not None:
        element.text = text
    return element


def indice_sin_firmar(
    meta: MetadatosExpediente,
    documentos: Sequence[DocumentoIndizado],
    *,
    fecha: datetime,
) -> bytes:
    """The expediente's ENI XML (``eniexp:expediente``: the índice and ``metadatosExp``),
    unsigned: its ``firmas`` hold the placeholder where the sellado signs."""
    if not documentos:
        raise ValueError("un índice electrónico lista al menos un documento")
    nsmap = {k: NS[k] for k in ("eniexp", "eniexpind", "eniconexpind", "eniexpmeta", "enids")}
    raiz = etree.Element(_q("eniexp", "expediente"), nsmap=nsmap)
    # No Id on the root: the signature's reference is then URI="" (the whole document).
    indice = _sub(raiz, "eniexpind", "indice")
    # The element is the índice schema's own; its children are the contenido schema's.
    contenido = _sub(indice, "eniexpind", "IndiceContenido")
    contenido.set("Id", "INDICE_CONTENIDO")
    _sub(contenido, "eniconexpind", "FechaIndiceElectronico", _ts(fecha))
    for doc in sorted(documentos, key=lambda d: d.orden):
        entrada = _sub(contenido, "eniconexpind", "DocumentoIndizado")
        entrada.set("Id", f"DOC_{doc.orden:06d}")
        _sub(entrada, "eniconexpind", "IdentificadorDocumento", doc.identificador)
        _sub(entrada, "eniconexpind", "ValorHuella", doc.huella)
        _sub(entrada, "eniconexpind", "FuncionResumen", doc.funcion)
        _sub(entrada, "eniconexpind", "FechaIncorporacionExpediente", _ts(doc.fecha_incorporacion))
        _sub(entrada, "eniconexpind", "OrdenDocumentoExpediente", str(doc.orden))
    firmas = _sub(indice, "enids", "firmas")
    firma = _sub(firmas, "enids", "firma")
    firma.set("Id", "FIRMA_INDICE")
    _sub(firma, "enids", "TipoFirma", "TF03")
    con_certificado = _sub(_sub(firma, "enids", "ContenidoFirma"), "enids", "FirmaConCertificado")
    hueco = etree.SubElement(con_certificado, f"{{{DS}}}Signature", nsmap={"ds": DS})
    hueco.set("Id", "placeholder")
    metadatos = _sub(raiz, "eniexpmeta", "metadatosExp")
    _sub(metadatos, "eniexpmeta", "VersionNTI", VERSION_NTI_EXPEDIENTE)
    _sub(metadatos, "eniexpmeta", "Identificador", meta.identificador)
    for organo in meta.organos:
        _sub(metadatos, "eniexpmeta", "Organo", organo)
    _sub(metadatos, "eniexpmeta", "FechaAperturaExpediente", _ts(meta.fecha_apertura))
    _sub(metadatos, "eniexpmeta", "Clasificacion", meta.clasificacion)
    _sub(metadatos, "eniexpmeta", "Estado", meta.estado)
    for interesado in meta.interesados:
        _sub(metadatos, "eniexpmeta", "Interesado", interesado)
    return bytes(etree.tostring(raiz, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True, slots=True)
class DocumentoEni:
    """What a ``documentoEni`` says of one document besides its bytes."""

    orden: int
    identificador: str
    organo: str
    fecha_captura: datetime
    origen_administracion: bool
    estado_elaboracion: str
    tipo_documental: str
    formato: str
    identificador_documento_origen: str | None = None
    csv: str | None = None
    regulacion_csv: str | None = None
    firmas_en_contenido: str | None = field(default=None)  # TF06 (PAdES) when the PDF is signed


_MARCA = "@@CONTENIDO@@"


def documento_partes(doc: DocumentoEni) -> tuple[bytes, bytes]:
    """The ``documentoEni`` XML around its content: the head ends where the base64 of the
    bytes goes (``enifile:ValorBinario``), the tail starts right after it."""
    nsmap = {k: NS[k] for k in ("enidoc", "enifile", "enidocmeta", "enids")}
    raiz = etree.Element(_q("enidoc", "documento"), nsmap=nsmap)
    raiz.set("Id", f"DOC_{doc.orden:06d}")
    contenido = _sub(raiz, "enifile", "contenido")
    _sub(contenido, "enifile", "ValorBinario", _MARCA)
    _sub(contenido, "enifile", "NombreFormato", doc.formato)
    meta = _sub(raiz, "enidocmeta", "metadatos")
    _sub(meta, "enidocmeta", "VersionNTI", VERSION_NTI_DOCUMENTO)
    _sub(meta, "enidocmeta", "Identificador", doc.identificador)
    _sub(meta, "enidocmeta", "Organo", doc.organo)
    _sub(meta, "enidocmeta", "FechaCaptura", _ts(doc.fecha_captura))
    _sub(
        meta,
        "enidocmeta",
        "OrigenCiudadanoAdministracion",
        "true" if doc.origen_administracion else "false",
    )
    estado = _sub(meta, "enidocmeta", "EstadoElaboracion")
    _sub(estado, "enidocmeta", "ValorEstadoElaboracion", doc.estado_elaboracion)
    if doc.identificador_documento_origen:
        _sub(
            estado, "enidocmeta", "IdentificadorDocumentoOrigen", doc.identificador_documento_origen
        )
    _sub(meta, "enidocmeta", "TipoDocumental", doc.tipo_documental)
    if doc.csv or doc.firmas_en_contenido:
        firmas = _sub(raiz, "enids", "firmas")
        if doc.csv:
            firma = _sub(firmas, "enids", "firma")
            _sub(firma, "enids", "TipoFirma", "TF01")
            csv = _sub(_sub(firma, "enids", "ContenidoFirma"), "enids", "CSV")
            _sub(csv, "enids", "ValorCSV", doc.csv)
            _sub(csv, "enids", "RegulacionGeneracionCSV", doc.regulacion_csv or "")
        if doc.firmas_en_contenido:
            firma = _sub(firmas, "enids", "firma")
            _sub(firma, "enids", "TipoFirma", doc.firmas_en_contenido)
            con_certificado = _sub(
                _sub(firma, "enids", "ContenidoFirma"), "enids", "FirmaConCertificado"
            )
            _sub(con_certificado, "enids", "ReferenciaFirma", f"#DOC_{doc.orden:06d}")
    texto = etree.tostring(raiz, xml_declaration=True, encoding="UTF-8")
    cabeza, cola = bytes(texto).split(_MARCA.encode("ascii"))
    return cabeza, cola


def nombre_en_zip(orden: int, identificador: str) -> str:
    """Where a document goes in the export: ``documentos/0001_<identificador>.xml``."""
    return f"documentos/{orden:04d}_{_ALNUM.sub('_', identificador)}.xml"
