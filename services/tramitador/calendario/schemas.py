"""REST models of the calendar."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from services.tramitador.calendario.domain import Unidad


class FestivosLocalesUpdate(BaseModel):
    """The local holidays of one year (they replace the ones set before)."""

    fechas: list[date] = Field(max_length=14, examples=[["2026-01-22", "2026-06-24"]])


class FestivoRead(BaseModel):
    """One día inhábil other than a weekend."""

    fecha: date
    nombre: str
    ambito: str = Field(description="`oficial` (nacional o autonómico) o `local`")


class FestivosRead(BaseModel):
    """The holidays of one council and year."""

    anio: int
    comunidad: str | None = Field(description="ISO 3166-2:ES de la comunidad autónoma")
    festivos_locales: list[date]
    festivos: list[FestivoRead]


class PlazoCalculado(BaseModel):
    """The end of a plazo computed with the council's calendar."""

    desde: date
    cantidad: int
    unidad: Unidad
    vencimiento: date
    comunidad: str | None
    residencia: list[str] = Field(
        default_factory=list,
        description="Otras comunidades cuyos festivos se contaron como inhábiles porque reside "
        "allí el interesado (art. 30.6)",
    )
    dias_naturales: int = Field(description="Días naturales de `desde` a `vencimiento`")
    dias_habiles: int = Field(description="Días hábiles después de `desde` hasta `vencimiento`")
