"""The NTI de Catálogo de estándares: the file formats a documento electrónico may have.

Shared by every service that takes files in (the repositorio stores them, the registro
records its anexos): the catalogue is the standard's, no service owns it. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIME_SERVIDOS", "Formato", "resolver_formato"]


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
