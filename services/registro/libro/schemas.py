"""REST models of an export of the libro: what staff ask for, and the job as it stands."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.registro.domain import TipoAsiento
from services.registro.libro.domain import EstadoExportacion, Formato


class ExportacionCreate(BaseModel):
    """What staff send to export a book: which one, as what, and the period."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"tipo": "entrada", "formato": "csv", "desde": "2026-01-01", "hasta": "2026-02-01"}
            ]
        },
    )

    tipo: TipoAsiento
    formato: Formato
    desde: date = Field(description="Primer día (incluido), en fecha local de la entidad")
    hasta: date = Field(description="Día siguiente al último (no se incluye); como mucho un año")


class ExportacionRead(BaseModel):
    """An export job as a client polls it."""

    id: str
    tipo: TipoAsiento
    formato: Formato
    desde: date
    hasta: date
    estado: EstadoExportacion
    total: int | None = Field(description="Asientos del periodo; null hasta que se cuentan")
    hechos: int = Field(description="Asientos ya escritos en el fichero")
    porcentaje: int = Field(ge=0, le=100)
    creado_por: str
    creado_en: datetime
    iniciado_en: datetime | None
    actualizado_en: datetime
    terminado_en: datetime | None
    tamano: int | None = Field(description="Bytes del fichero, cuando está terminada")
    error: str | None
    fichero: str | None = Field(description="Dónde descargar el fichero, cuando está terminada")
