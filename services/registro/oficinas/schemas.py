"""REST models of oficinas, libros and numbering."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.inputs import DIR3_OFICINA
from services.registro.domain import TipoAsiento
from services.registro.oficinas.domain import (
    EstadoLibro,
    EstadoOficina,
    ModoNumeracion,
    validate_codigo_oficina,
)
from services.registro.schemas import Motivo, TextoMotivo, no_en_blanco


class OficinaCreate(BaseModel):
    """What an administrator sends to create an oficina de registro."""

    model_config = ConfigDict(extra="forbid")

    codigo: str = Field(
        description="Código DIR3 de la oficina (empieza por O)",
        examples=["O00002741"],
        json_schema_extra=DIR3_OFICINA,
    )
    nombre: str = Field(min_length=1, max_length=80, examples=["Oficina de registro central"])
    electronica: bool = Field(
        default=False,
        description="Oficina del registro electrónico: en ella se registran los asientos "
        "que los ciudadanos presentan por la sede sin nombrar oficina (una por entidad)",
    )

    @field_validator("codigo")
    @classmethod
    def _valid_codigo(cls, value: str) -> str:
        return validate_codigo_oficina(value)

    @field_validator("nombre")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return no_en_blanco(value)


class OficinaRead(BaseModel):
    """An oficina de registro of the entity."""

    codigo: str = Field(examples=["O00002741"])
    nombre: str
    prefijo: int = Field(
        description="Número de la oficina en la entidad (1 a 999), asignado al crearla: en "
        "numeración por oficina va tras el año (E/2026/002000012 es el asiento 12 de la 2)",
        examples=[2],
    )
    estado: EstadoOficina
    electronica: bool = False
    creada_por: str
    creada_en: datetime
    cerrada_por: str | None = None
    cerrada_en: datetime | None = None
    motivo_cierre: str | None = None


class CierreCreate(Motivo):
    """Why an oficina or a libro is closed (kept with it and in the audit trail)."""

    motivo: TextoMotivo = Field(examples=["Cierre del ejercicio"])


class LibroCreate(BaseModel):
    """What an administrator sends to open a libro: its tipo and, optionally, its oficina."""

    model_config = ConfigDict(extra="forbid")

    tipo: TipoAsiento
    oficina: str | None = Field(
        default=None,
        description="Código DIR3 de la oficina del libro; sin él, el libro central del tipo",
        examples=["O00002741"],
        json_schema_extra=DIR3_OFICINA,
    )

    @field_validator("oficina")
    @classmethod
    def _valid_oficina(cls, value: str | None) -> str | None:
        return None if value is None else validate_codigo_oficina(value)


class LibroRead(BaseModel):
    """A libro de entrada or de salida, central or of one oficina, and where it stands."""

    id: str
    tipo: TipoAsiento
    oficina: str | None = Field(description="null: libro central del tipo")
    nombre: str = Field(examples=["libro de entrada de la oficina O00002741"])
    estado: EstadoLibro
    abierto_por: str = Field(description="Quién lo abrió (o reabrió) por última vez")
    abierto_en: datetime
    cerrado_por: str | None = Field(default=None, description="Solo mientras está cerrado")
    cerrado_en: datetime | None = None
    motivo_cierre: str | None = None


class NumeracionUpdate(BaseModel):
    """The numbering mode an administrator asks for."""

    model_config = ConfigDict(extra="forbid")

    modo: ModoNumeracion


class CambioProgramado(BaseModel):
    """A change of mode that takes effect on 1 January of ``desde_anio``."""

    modo: ModoNumeracion
    desde_anio: int


class NumeracionRead(BaseModel):
    """How the entity numbers this year, and the change scheduled for a later one, if any."""

    modo: ModoNumeracion
    anio: int = Field(description="Año registral en curso de la entidad")
    proximo: CambioProgramado | None = None
