"""Anexos of an asiento: the documents that come with it, kept in the repositorio.

An anexo arrives inline with the asiento, base64-encoded, as SICRES 3.0 carries it
(``De_Anexo``). The registro checks it, hashes it and, in the asiento's own unit of
work, sends the repositorio the command to store it under a ``documento_id`` the
registro chooses, so the asiento names its documents from the moment it commits.
The asiento keeps only what SICRES says about each anexo (:class:`AnexoRead`);
the bytes live in the repositorio alone.

Limits follow SIR practice (ORVE/GEISER): at most :data:`MAX_ANEXOS` anexos, 10 MB
each and 15 MB in all (``registro_max_anexo_bytes`` / ``registro_max_anexos_bytes``).
The body of ``POST /asientos`` is refused before it is parsed when it cannot fit them
(:class:`LimiteCuerpo`).

This module does not import ``services.registro.schemas``: the schemas import it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import FieldError, PayloadTooLarge, Unprocessable, problem_response

# The catalogue of formats (NTI de Catálogo de estándares) is the one the repositorio
# applies too: an anexo the repositorio would refuse is refused here, at once, instead of
# leaving the asiento naming a documento that never gets stored.
from services.common.nti import resolver_formato
from services.common.settings import Settings
from services.common.tenants import tenants_table
from services.common.uow import UnitOfWork
from services.registro.domain import TipoAsiento

if TYPE_CHECKING:  # sicres imports schemas, which imports this module
    from services.registro.sicres import AnexoSicres

__all__ = [
    "ALMACENAR_DOCUMENTO",
    "MAX_ANEXOS",
    "AnexoCreate",
    "AnexoRead",
    "LimiteCuerpo",
    "Limites",
    "TipoDocumentoAnexo",
    "Validez",
    "guardar_anexos",
    "guardar_anexos_recibidos",
    "hash_sicres",
    "max_cuerpo",
    "sha256_de_hash",
]

ALMACENAR_DOCUMENTO = "repositorio.documento.almacenar.v1"
# SIR (ORVE/GEISER) takes at most five documents with an asiento.
MAX_ANEXOS = 5
MAX_FIRMA_CHARS = 200_000
MAX_SELLO_CHARS = 50_000
# Room in a POST /asientos body beside the anexos' content: the asiento's own fields,
# and each anexo's detached signature and time-stamp token.
MARGEN_CUERPO = 1024 * 1024 + MAX_ANEXOS * (MAX_FIRMA_CHARS + MAX_SELLO_CHARS)
_OCTET_STREAM = "application/octet-stream"
_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
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


def _base64_valido(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    compact = "".join(value.split())
    if not compact:
        return None
    if len(compact) > limit:
        raise ValueError(f"máximo {limit} caracteres en base64")
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("no es base64 válido") from None
    return compact


class AnexoCreate(BaseModel):
    """An anexo as a client sends it with the asiento, its content in base64."""

    model_config = ConfigDict(extra="forbid")

    nombre: str = Field(
        min_length=1,
        max_length=80,
        description="Nombre del fichero, sin directorios (SICRES Nombre_Fichero_Anexado)",
        examples=["solicitud.pdf"],
    )
    tipo_mime: str | None = Field(
        default=None,
        max_length=255,
        description="Tipo MIME; si falta, lo dice la extensión del nombre o el propio contenido",
        examples=["application/pdf"],
    )
    contenido: str = Field(
        min_length=1,
        description="El fichero en base64 (RFC 4648); como máximo 10 MB por anexo y 15 MB en "
        "total por asiento",
    )
    validez: Validez | None = Field(
        default=None,
        description="01 copia, 02 copia compulsada, 03 copia original, 04 original",
    )
    tipo_documento: TipoDocumentoAnexo = Field(
        default=TipoDocumentoAnexo.DOCUMENTO_ADJUNTO,
        description="01 formulario, 02 documento adjunto, 03 fichero técnico interno",
    )
    observaciones: str | None = Field(default=None, max_length=50)
    firma: str | None = Field(
        default=None,
        description="Firma separada del documento, en base64 (SICRES Firma_Documento)",
    )
    sello_tiempo: str | None = Field(
        default=None,
        description="Sello de tiempo RFC 3161 del documento, en base64 (SICRES TimeStamp)",
    )

    @field_validator("nombre")
    @classmethod
    def _nombre_sin_rutas(cls, value: str) -> str:
        nombre = unicodedata.normalize("NFC", value).strip()
        if "/" in nombre or "\\" in nombre:
            raise ValueError("el nombre no puede llevar separadores de directorio (/ o \\)")
        if any(unicodedata.category(ch)[0] == "C" for ch in nombre):
            raise ValueError("el nombre no puede llevar caracteres de control")
        if nombre.strip(".") == "":
            raise ValueError("nombre de fichero no válido")
        return nombre

    @field_validator("tipo_mime")
    @classmethod
    def _mime(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        mime = value.split(";", 1)[0].strip().lower()
        if not _MIME.match(mime):
            raise ValueError("tipo MIME no válido (tipo/subtipo)")
        return mime

    @field_validator("firma")
    @classmethod
    def _firma(cls, value: str | None) -> str | None:
        return _base64_valido(value, MAX_FIRMA_CHARS)

    @field_validator("sello_tiempo")
    @classmethod
    def _sello(cls, value: str | None) -> str | None:
        return _base64_valido(value, MAX_SELLO_CHARS)

    @field_validator("observaciones")
    @classmethod
    def _observaciones(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None


class AnexoRead(BaseModel):
    """What the asiento records of an anexo; its bytes are in the repositorio."""

    identificador_fichero: str = Field(
        max_length=50,
        description="Identificador del fichero en el asiento (SICRES Identificador_Fichero)",
        examples=["E_2026_000001_0001.pdf"],
    )
    documento_id: str | None = Field(
        description="Documento del repositorio que guarda el contenido; null si llegó sin él"
    )
    version: int | None = Field(description="Versión del documento con este contenido")
    nombre: str
    tipo_mime: str | None
    tamano: int | None = Field(description="Tamaño en bytes; null si llegó sin contenido")
    sha256: str | None = Field(
        description="SHA-256 del contenido en hexadecimal; null si llegó sin contenido y con "
        "un Hash que no es SHA-256"
    )
    validez: Validez | None = None
    tipo_documento: TipoDocumentoAnexo
    observaciones: str | None = None
    firma: str | None = Field(default=None, description="Firma separada, en base64")
    sello_tiempo: str | None = Field(default=None, description="Sello de tiempo, en base64")
    identificador_documento_firmado: str | None = Field(
        default=None,
        description="Identificador_Fichero del anexo que este firma (SICRES), si es una firma",
    )
    hash_origen: str | None = Field(
        default=None,
        description="Hash SICRES tal como llegó (base64), para un anexo recibido sin contenido",
    )
    sin_contenido: bool = Field(
        default=False, description="Anexo de un intercambio que llegó sin su contenido"
    )


@dataclass(frozen=True)
class Limites:
    """How large anexos may be: each one, and all of an asiento's together (bytes)."""

    max_anexo_bytes: int = 10 * 1024 * 1024
    max_anexos_bytes: int = 15 * 1024 * 1024

    @classmethod
    def de(cls, settings: Settings) -> Limites:
        """The limits a deployment configured."""
        return cls(settings.registro_max_anexo_bytes, settings.registro_max_anexos_bytes)


def max_cuerpo(limites: Limites) -> int:
    """The largest POST /asientos body that can hold anexos within ``limites``."""
    return 4 * math.ceil(limites.max_anexos_bytes / 3) + MARGEN_CUERPO


def _max_base64(max_bytes: int) -> int:
    return 4 * math.ceil(max_bytes / 3)


# --- naming and hashes -----------------------------------------------------------------------


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


def hash_sicres(anexo: AnexoRead) -> str:
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


# --- storing ---------------------------------------------------------------------------------


async def _organo(uow: UnitOfWork) -> str:
    """The entity's DIR3 code: the órgano its documents belong to."""
    dir3 = (
        await uow.session.execute(
            select(tenants_table.c.dir3).where(tenants_table.c.ine_code == uow.tenant_id)
        )
    ).scalar_one_or_none()
    if dir3 is None:
        raise Unprocessable(f"La entidad {uow.tenant_id} no está en el registro de entidades.")
    return str(dir3)


def _tipo_documental(tipo: TipoAsiento, tipo_documento: TipoDocumentoAnexo) -> str:
    # The form of an entrada is the citizen's solicitud (TD14); anything else is "otros".
    if tipo is TipoAsiento.ENTRADA and tipo_documento is TipoDocumentoAnexo.FORMULARIO:
        return "TD14"
    return "TD99"


def _almacenar(
    uow: UnitOfWork,
    *,
    anexo: AnexoRead,
    contenido: bytes,
    organo: str,
    tipo: TipoAsiento,
    asiento_id: str,
    numero: str,
) -> None:
    """Sends the command that stores one anexo as a documento (committed with the asiento)."""
    assert anexo.documento_id is not None and anexo.tipo_mime is not None
    uow.emit(
        ALMACENAR_DOCUMENTO,
        {
            "documento_id": anexo.documento_id,
            "nombre": anexo.nombre,
            "mime": anexo.tipo_mime,
            "contenido": base64.b64encode(contenido).decode("ascii"),
            "sha256": anexo.sha256,
            "metadatos": {
                "organo": organo,
                # An entrada brings what citizens present; a salida, what the council sends.
                "origen": "ciudadano" if tipo is TipoAsiento.ENTRADA else "administracion",
                "estado_elaboracion": (anexo.validez or Validez.ORIGINAL).estado_elaboracion,
                "tipo_documental": _tipo_documental(tipo, anexo.tipo_documento),
            },
            "referencia": {"tipo": "asiento", "id": asiento_id, "numero": numero},
        },
        subject=numero,
    )


def _too_large(field: str, detail: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(detail, errors=[FieldError(field, f"máximo {limit} bytes")])


def _decode(anexos: Sequence[AnexoCreate], limites: Limites) -> list[bytes]:
    """Every anexo's bytes; 413 past a limit, 422 naming each bad ``anexos[i].contenido``."""
    maximo = _max_base64(limites.max_anexo_bytes)
    for n, anexo in enumerate(anexos):
        # Refused on the encoded length before decoding: no work for what cannot fit
        # (with room for the line breaks MIME-style base64 may carry).
        if len(anexo.contenido) > maximo + maximo // 38 + 4:
            raise _too_large(
                f"anexos[{n}].contenido",
                f"El anexo {anexo.nombre} supera el máximo de {limites.max_anexo_bytes} bytes.",
                limites.max_anexo_bytes,
            )
    contenidos: list[bytes] = []
    errors: list[FieldError] = []
    for n, anexo in enumerate(anexos):
        try:
            data = base64.b64decode("".join(anexo.contenido.split()), validate=True)
        except (binascii.Error, ValueError):
            errors.append(FieldError(f"anexos[{n}].contenido", "no es base64 válido"))
            contenidos.append(b"")
            continue
        if not data:
            errors.append(FieldError(f"anexos[{n}].contenido", "el fichero está vacío"))
        elif len(data) > limites.max_anexo_bytes:
            raise _too_large(
                f"anexos[{n}].contenido",
                f"El anexo {anexo.nombre} supera el máximo de {limites.max_anexo_bytes} bytes.",
                limites.max_anexo_bytes,
            )
        contenidos.append(data)
    if errors:
        campos = ", ".join(e["field"] for e in errors)
        raise Unprocessable(f"Datos no válidos: {campos}", errors=errors)
    total = sum(len(c) for c in contenidos)
    if total > limites.max_anexos_bytes:
        raise _too_large(
            "anexos",
            f"Los anexos suman {total} bytes y el máximo por asiento es "
            f"{limites.max_anexos_bytes}.",
            limites.max_anexos_bytes,
        )
    return contenidos


async def guardar_anexos(
    uow: UnitOfWork,
    *,
    asiento_id: str,
    numero: str,
    tipo: TipoAsiento,
    anexos: Sequence[AnexoCreate],
    limites: Limites | None = None,
) -> list[AnexoRead]:
    """Checks and hashes an asiento's anexos and asks the repositorio to store each one.

    The commands go out with the asiento's unit of work, so they exist if and only if
    the asiento does. Answers what the asiento records of them. Raises 413 naming
    the anexo past a limit, 422 naming ``anexos[i].contenido`` (bad base64, empty) or
    ``anexos[i].tipo_mime`` / ``anexos[i].nombre`` (a format the repositorio refuses).
    """
    if not anexos:
        return []
    if len(anexos) > MAX_ANEXOS:
        raise Unprocessable(
            f"Un asiento lleva como máximo {MAX_ANEXOS} anexos.",
            errors=[FieldError("anexos", f"máximo {MAX_ANEXOS}")],
        )
    contenidos = _decode(anexos, limites or Limites())
    leidos: list[AnexoRead] = []
    errors: list[FieldError] = []
    for n, (anexo, contenido) in enumerate(zip(anexos, contenidos, strict=True)):
        try:
            mime = resolver_mime(anexo.tipo_mime, anexo.nombre, contenido)
        except ValueError as exc:
            campo = "tipo_mime" if anexo.tipo_mime is not None else "nombre"
            errors.append(FieldError(f"anexos[{n}].{campo}", str(exc)))
            continue
        leidos.append(
            AnexoRead(
                identificador_fichero=identificador_fichero(numero, n + 1, anexo.nombre),
                documento_id=str(uuid.uuid4()),
                version=1,
                nombre=anexo.nombre,
                tipo_mime=mime,
                tamano=len(contenido),
                sha256=hashlib.sha256(contenido).hexdigest(),
                validez=anexo.validez,
                tipo_documento=anexo.tipo_documento,
                observaciones=anexo.observaciones,
                firma=anexo.firma,
                sello_tiempo=anexo.sello_tiempo,
            )
        )
    if errors:
        campos = ", ".join(e["field"] for e in errors)
        raise Unprocessable(f"Datos no válidos: {campos}", errors=errors)
    organo = await _organo(uow)
    for leido, contenido in zip(leidos, contenidos, strict=True):
        _almacenar(
            uow,
            anexo=leido,
            contenido=contenido,
            organo=organo,
            tipo=tipo,
            asiento_id=asiento_id,
            numero=numero,
        )
    return leidos


def _codigo(enum: type[Validez] | type[TipoDocumentoAnexo], value: str | None, campo: str) -> Any:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        raise Unprocessable(
            "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
            errors=[FieldError(campo, f"código SICRES desconocido: {value!r}")],
        ) from None


def _b64(value: bytes | str | None) -> str | None:
    if value is None or value == b"" or value == "":
        return None
    if isinstance(value, str):
        return "".join(value.split()) or None
    return base64.b64encode(value).decode("ascii")


async def guardar_anexos_recibidos(
    uow: UnitOfWork,
    *,
    asiento_id: str,
    numero: str,
    anexos: Sequence[AnexoSicres],
    limites: Limites | None = None,
) -> list[AnexoRead]:
    """The anexos of an accepted exchange, recorded on its new entrada.

    Those that came with their content are stored in the repositorio like any other
    (same command; their Hash was checked on reception). Those that came without it
    are recorded flagged ``sin_contenido``, with no documento; their Hash is kept as
    the sha256 when it is one, and as it came otherwise, to pass it on.
    """
    limites = limites or Limites()
    organo: str | None = None
    leidos: list[AnexoRead] = []
    vistos: set[str] = set()
    for n, anexo in enumerate(anexos):
        campo = f"De_Anexo[{anexo.identificador_fichero}]"
        identificador = anexo.identificador_fichero
        if identificador in vistos or len(identificador) > 50:
            identificador = identificador_fichero(numero, n + 1, anexo.nombre_fichero)
        vistos.add(identificador)
        comun: dict[str, Any] = {
            "identificador_fichero": identificador,
            "nombre": anexo.nombre_fichero,
            "validez": _codigo(Validez, anexo.validez, campo),
            "tipo_documento": _codigo(TipoDocumentoAnexo, anexo.tipo_documento, campo),
            "observaciones": anexo.observaciones,
            "firma": _b64(anexo.firma),
            "sello_tiempo": _b64(anexo.sello_tiempo),
            "identificador_documento_firmado": anexo.identificador_documento_firmado,
        }
        contenido = anexo.contenido
        if contenido is None:
            sha256 = sha256_de_hash(anexo.hash)
            leidos.append(
                AnexoRead(
                    **comun,
                    documento_id=None,
                    version=None,
                    tipo_mime=anexo.tipo_mime,
                    tamano=None,
                    sha256=sha256,
                    hash_origen=None if sha256 is not None else anexo.hash,
                    sin_contenido=True,
                )
            )
            continue
        if len(contenido) > limites.max_anexo_bytes:
            raise Unprocessable(
                "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
                errors=[FieldError(campo, f"supera el máximo de {limites.max_anexo_bytes} bytes")],
            )
        try:
            mime = resolver_mime(anexo.tipo_mime, anexo.nombre_fichero, contenido)
        except ValueError as exc:
            raise Unprocessable(
                "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
                errors=[FieldError(campo, str(exc))],
            ) from None
        leido = AnexoRead(
            **comun,
            documento_id=str(uuid.uuid4()),
            version=1,
            tipo_mime=mime,
            tamano=len(contenido),
            sha256=hashlib.sha256(contenido).hexdigest(),
        )
        organo = organo or await _organo(uow)
        _almacenar(
            uow,
            anexo=leido,
            contenido=contenido,
            organo=organo,
            tipo=TipoAsiento.ENTRADA,
            asiento_id=asiento_id,
            numero=numero,
        )
        leidos.append(leido)
    return leidos


# --- the request body ------------------------------------------------------------------------


class LimiteCuerpo:
    """ASGI middleware: refuses (413) a request body larger than ``max_bytes`` on one route.

    FastAPI reads and parses a JSON body whole before any dependency runs; this reads
    it first, counting, and answers 413 as soon as the declared Content-Length or the
    bytes received pass the limit, so an oversize asiento is never held or parsed.
    """

    def __init__(self, app: ASGIApp, *, method: str, path: str, max_bytes: int) -> None:
        self.app = app
        self.method = method.upper()
        self.path = path.rstrip("/")
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Passes other requests through; reads this route's body within the limit."""
        if (
            scope["type"] != "http"
            or scope["method"] != self.method
            or scope["path"].rstrip("/") != self.path
        ):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        partes: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the app see it as it would have.
                await self.app(scope, _replay(b"", message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            partes.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(partes), None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            f"La petición supera el máximo de {self.max_bytes} bytes: los anexos de un "
            "asiento no pueden sumar tanto.",
            slug=PayloadTooLarge.slug,
            instance=scope["path"],
            errors=[FieldError("anexos", f"el cuerpo admite como máximo {self.max_bytes} bytes")],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _replay(body: bytes, then: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if then is not None:
                return then
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
