"""REST models of the tramitador API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.tramitador.expedientes.domain import EstadoExpediente


class ProcedimientoRead(BaseModel):
    """A procedimiento of the catalogue."""

    codigo: str = Field(examples=["generico"])
    denominacion: str
    norma: str
    sia: str | None
    plazo_resolucion_meses: int
    silencio: str


class ExpedienteRead(BaseModel):
    """A case file."""

    id: str
    numero: str = Field(examples=["EXP/2026/000001"])
    anio: int
    secuencia: int
    procedimiento: str
    estado: EstadoExpediente
    asiento_id: str
    asiento_numero: str
    fecha_inicio: datetime
    # The interesados as the asiento recorded them.
    interesados: list[dict[str, Any]]


class ExpedienteList(BaseModel):
    """Expedientes matching a query."""

    items: list[ExpedienteRead]


class ProcedimientoList(BaseModel):
    """The catalogue."""

    items: list[ProcedimientoRead]
