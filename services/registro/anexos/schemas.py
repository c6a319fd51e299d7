"""REST models of an anexo: what a client sends inline with an asiento, what the asiento keeps."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.registro.anexos.domain import (
    MAX_FIRMA_CHARS,
    MAX_SELLO_CHARS,
    TipoDocumentoAnexo,
    Validez,
)


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


_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
