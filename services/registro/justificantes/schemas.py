"""REST models of a justificante: where it stands, issued or still pending."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)

from services.registro.justificantes.domain import EstadoJustificante


class JustificanteRead(BaseModel):
    """Where the justificante of an asiento stands, as the registro recorded it."""

    asiento_id: str
    estado: EstadoJustificante
    intento: int
    solicitud_id: str
    solicitado_en: datetime
    documento_id: str | None = None
    version: int | None = None
    csv: str | None = None
    url_verificacion: str | None = None
    emitido_en: datetime | None = None
    motivo: str | None = None
    codigo: str | None = None


class JustificanteEmitido(BaseModel):
    """An issued justificante: the See Other answer points at its public sealed PDF."""

    estado: Literal["emitido"] = "emitido"
    csv: str = Field(examples=["ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"])
    url_verificacion: str
    documento_id: str
    version: int


class JustificantesEnCola(BaseModel):
    """The entity's justificantes asked for and not yet issued: the issuing chain's backlog."""

    pendientes: int = Field(ge=0, description="Asientos cuyo justificante aún se está emitiendo.")
    fallidos: int = Field(ge=0, description="Justificantes cuya emisión falló (reintentables).")
    mas_antiguo: datetime | None = Field(
        default=None, description="Cuándo se pidió el pendiente más antiguo (nulo si no hay)."
    )
    antiguedad_segundos: float = Field(
        ge=0, description="Segundos que lleva esperando el pendiente más antiguo (0 si no hay)."
    )


class JustificantePendiente(BaseModel):
    """A justificante still being issued: ask again after Retry-After seconds."""

    type: str
    title: str
    status: Literal[202] = 202
    detail: str
    estado: Literal["pendiente"] = "pendiente"
    asiento_id: str
