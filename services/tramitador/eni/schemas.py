"""REST models of the expediente electrónico: foliado entries, versions of the índice,
and the answer of a verification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class FoliadoRead(BaseModel):
    """One entry of the foliado: a document that entered the expediente, in its order."""

    orden: int = Field(ge=1)
    origen: str = Field(
        description="`emitido` (por el tramitador), `anexo` (del asiento que lo inició), "
        "`adjunto` (por el personal) o `retirada` (retira la entrada `retira`)"
    )
    retira: int | None = None
    documento_id: str | None
    version: int | None
    identificador: str | None = Field(description="Identificador ENI del documento")
    titulo: str
    nombre: str | None
    mime: str | None
    tamano: int | None
    funcion_resumen: str | None = Field(description="SHA256 o SHA512")
    huella: str | None = Field(description="Resumen del contenido, hexadecimal")
    motivo: str | None = None
    incorporado_por: str
    incorporado_at: datetime


class FoliadoList(BaseModel):
    """The expediente's foliado, in order."""

    items: list[FoliadoRead]


class DocumentoIncorporar(BaseModel):
    """A document of the repositorio that staff incorporate into the expediente."""

    model_config = ConfigDict(extra="forbid")

    documento_id: str = Field(pattern=_UUID)
    titulo: str = Field(min_length=1, max_length=300)


class Retirada(BaseModel):
    """Why a document is withdrawn (it stays in the índice; the withdrawal is an entry)."""

    model_config = ConfigDict(extra="forbid")

    motivo: str = Field(min_length=3, max_length=2000)


class IndiceVersionRead(BaseModel):
    """A frozen version of the índice electrónico and the state of its signature."""

    version: int
    causa: str = Field(description="`fase`, `resolucion`, `solicitado`, `remision` o `archivo`")
    fase: str | None
    estado: str = Field(description="`firmando`, `firmado` o `fallido`")
    hasta_orden: int = Field(description="La última entrada del foliado que lista")
    sha256: str | None
    firmante: str | None
    sello_tiempo: datetime | None
    motivo: str | None
    created_at: datetime
    firmado_at: datetime | None


class IndiceVersionList(BaseModel):
    """Every frozen version of the índice, newest first."""

    items: list[IndiceVersionRead]


class FirmaVerificada(BaseModel):
    """The índice's XAdES signature, and whether its signer is one the platform trusts."""

    valida: bool
    firmante: str | None = None
    emisor: str | None = None
    cadena_confiable: bool = Field(
        default=False,
        description="El certificado del firmante enlaza con el ancla de confianza de la "
        "plataforma (en la fecha del sello de tiempo)",
    )
    ancla: str | None = Field(default=None, description="El ancla con la que enlaza")
    motivo: str | None = None
    motivo_cadena: str | None = None


class SelloVerificado(BaseModel):
    """The XAdES-T time-stamp over the signature value."""

    valido: bool
    fecha: datetime | None = None
    firmante: str | None = Field(default=None, description="La TSA que firmó el sello")
    cadena_confiable: bool = Field(
        default=False,
        description="El certificado de la TSA enlaza con el ancla de confianza de la plataforma",
    )
    ancla: str | None = None
    motivo: str | None = None
    motivo_cadena: str | None = None


class DocumentoVerificado(BaseModel):
    """One document the índice lists, and whether the ZIP holds it unchanged."""

    orden: str
    identificador: str
    fichero: str | None
    estado: str = Field(description="`integro`, `alterado`, `ausente` o `ilegible`")


class VerificacionRead(BaseModel):
    """The verification of an exported ENI expediente."""

    valido: bool
    motivo: str | None = None
    firma: FirmaVerificada | None = None
    sello_tiempo: SelloVerificado | None = None
    documentos: list[DocumentoVerificado] = Field(default_factory=list)
    alterados: list[str] = Field(
        default_factory=list, description="Los ficheros (o identificadores) que no verifican"
    )

    @classmethod
    def de(cls, data: dict[str, Any]) -> VerificacionRead:
        """From what :func:`services.tramitador.eni.verificacion.verificar_zip` returns."""
        return cls.model_validate(data)


class ArchivoRead(BaseModel):
    """An expediente in the archive, with the conservation class of its procedure."""

    expediente_id: str
    numero: str
    procedimiento: str
    asunto: str | None
    clase: str = Field(description="`permanente` o `temporal`")
    anios: int | None = Field(description="Años de conservación (clase temporal)")
    serie: str | None = Field(description="Serie documental")
    archivado_at: datetime
    archivado_por: str


class ArchivoList(BaseModel):
    """Archived expedientes, most recent first; ``next_antes_de`` gives the next page."""

    items: list[ArchivoRead]
    next_antes_de: datetime | None = None
