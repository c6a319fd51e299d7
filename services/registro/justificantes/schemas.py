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


class JustificantePendiente(BaseModel):
    """A justificante still being issued: ask again after Retry-After seconds."""

    type: str
    title: str
    status: Literal[202] = 202
    detail: str
    estado: Literal["pendiente"] = "pendiente"
    asiento_id: str
