"""REST models of an emisión: what a caller asks to issue, and the emisión as it stands."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.repositorio.emision.domain import EstadoEmision
from services.repositorio.schemas import VersionRead


class EmitirRequest(BaseModel):
    """What to issue: a version of the documento (its current one when absent)."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        default=None, ge=1, description="Versión que se emite; por defecto, la actual"
    )


class Referencia(BaseModel):
    """What a command's requester issues the document for (e.g. the asiento of a justificante)."""

    tipo: str = Field(examples=["asiento"])
    id: str
    numero: str = Field(examples=["E/2026/000042"])


class EmisionRead(BaseModel):
    """One emisión: a version issued with a CSV and the seal, or on its way, or failed."""

    id: str
    documento_id: str
    estado: EstadoEmision = Field(
        description="pendiente (se pide el CSV), sellando (CSV estampado, en el sellado), "
        "emitida o fallida"
    )
    version_origen: int = Field(description="Versión que se emite")
    version_emitida: int | None = Field(
        default=None, description="Versión nueva con el CSV y el sello, una vez emitida"
    )
    csv: str | None = Field(default=None, examples=["ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"])
    url_verificacion: str | None = None
    firmante: str | None = None
    sello_tiempo: datetime | None = None
    codigo: str | None = Field(default=None, description="Por qué falló, para programas")
    motivo: str | None = Field(default=None, description="Por qué falló, para personas")
    solicitud_id: str | None = Field(
        default=None, description="Solicitud de la orden del bus que pidió la emisión"
    )
    solicitante: str | None = None
    referencia: Referencia | None = None
    creado_en: datetime
    creado_por: str
    actualizado_en: datetime
    emitida_en: datetime | None = None


class DocumentoEmitido(BaseModel):
    """The answer of an emisión that finished: the CSV and the new version that carries it."""

    csv: str = Field(examples=["ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"])
    url_verificacion: str
    emision_id: str
    documento_id: str
    version: VersionRead
