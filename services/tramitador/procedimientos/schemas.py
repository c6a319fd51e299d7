"""REST models of the catalogue of procedures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.tramitador.procedimientos.domain import EstadoVersion


class PlazoRead(BaseModel):
    """An amount of time and its unit (Ley 39/2015, art. 30)."""

    cantidad: int
    unidad: str


class ProcedimientoRead(BaseModel):
    """One version of a procedure of the catalogue (without its workflow)."""

    codigo: str = Field(examples=["licencia-vado"])
    version: int
    estado: EstadoVersion
    nombre: str
    sia: str | None = None
    normativa: list[str]
    unidad_tramitadora: str | None = None
    plazo_resolucion: PlazoRead
    silencio: str
    iniciacion: list[str]
    publicado_at: datetime | None = None


class ProcedimientoDetalle(ProcedimientoRead):
    """One version with its whole definition (as imported)."""

    definicion: dict[str, Any]


class ProcedimientoList(BaseModel):
    """Procedures of the catalogue."""

    items: list[ProcedimientoRead]


class ProcedimientoImport(BaseModel):
    """A definition sent as JSON (YAML is sent as the raw body, ``application/yaml``)."""

    definicion: dict[str, Any]
