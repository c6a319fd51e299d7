"""What the csv service stores about an issued document and what verification answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Metadatos", "VerificacionRead"]


class Metadatos(BaseModel):
    """The public facts of an issued document, kept with its code when it is activated."""

    model_config = ConfigDict(extra="ignore")

    entidad: str = Field(description="La entidad local que emitió el documento")
    nombre_fichero: str
    identificador: str = Field(description="Identificador ENI del documento")
    tipo_documental: str = Field(description="Tipo documental de la NTI (TD01…TD99)")
    organo: str = Field(description="Código DIR3 del órgano")
    emitido_en: datetime
    firmante: str = Field(description="Titular del sello electrónico del documento")
    sello_tiempo: datetime = Field(description="Fecha y hora del sello de tiempo")
    sha256: str = Field(description="Huella SHA-256 del PDF emitido, en hexadecimal")
    tamano: int = Field(description="Tamaño del PDF emitido, en bytes")


class VerificacionRead(Metadatos):
    """A verified code: the document it names and where to download it."""

    csv: str = Field(description="El código seguro de verificación, en su forma canónica")
    url_verificacion: str
    url_descarga: str = Field(description="El documento emitido, byte a byte")
    tipo_documental_nombre: str
