"""REST models of the registro API (what frontends send and receive)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.registro.busqueda import EstadoAsiento
from services.registro.domain import (
    TipoAsiento,
    TipoIdentificador,
    normalize_identificador,
    validate_dir3,
)
from services.registro.justificante import EstadoJustificante


class Interesado(BaseModel):
    """A person or company party to the asiento."""

    model_config = ConfigDict(extra="forbid")

    tipo_identificador: TipoIdentificador
    identificador: str = Field(min_length=1, max_length=20, examples=["12345678Z"])
    nombre: str = Field(min_length=1, max_length=80)
    apellido1: str | None = Field(default=None, max_length=30)
    apellido2: str | None = Field(default=None, max_length=30)

    @field_validator("identificador")
    @classmethod
    def _valid_identificador(cls, value: str, info: ValidationInfo) -> str:
        tipo = info.data.get("tipo_identificador")
        if tipo is None:  # its own error is reported on tipo_identificador
            return value
        return normalize_identificador(tipo, value)


class AsientoCreate(BaseModel):
    """What staff send to register an asiento."""

    model_config = ConfigDict(extra="forbid")

    tipo: TipoAsiento
    resumen: str = Field(min_length=1, max_length=240)
    unidad_destino: str = Field(
        description="Código DIR3 de la unidad de destino", examples=["L01030149"]
    )
    interesados: list[Interesado] = Field(min_length=1, max_length=100)
    # Catalogue code of the procedimiento the request starts (e.g. "generico").
    procedimiento: str | None = Field(default=None, min_length=1, max_length=50)

    @field_validator("unidad_destino")
    @classmethod
    def _valid_dir3(cls, value: str) -> str:
        return validate_dir3(value)


class AnulacionCreate(BaseModel):
    """What staff send to annul an asiento: why."""

    model_config = ConfigDict(extra="forbid")

    motivo: str = Field(min_length=1, max_length=500, examples=["Registrado por duplicado"])

    @field_validator("motivo")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("el motivo no puede estar en blanco")
        return stripped


class Anulacion(BaseModel):
    """Who annulled an asiento, when and why."""

    motivo: str
    anulado_por: str
    anulado_en: datetime


class AsientoRead(BaseModel):
    """An asiento as the register recorded it, and whether it was annulled since."""

    id: str
    numero: str = Field(examples=["E/2026/000001"])
    tipo: TipoAsiento
    anio: int
    secuencia: int
    fecha_registro: datetime
    resumen: str
    unidad_destino: str
    procedimiento: str | None
    interesados: list[Interesado]
    registrado_por: str
    estado: EstadoAsiento = EstadoAsiento.REGISTRADO
    anulacion: Anulacion | None = None


class AsientoPage(BaseModel):
    """One page of asientos, newest first (fecha_registro, then id, descending)."""

    items: list[AsientoRead]
    total: int | None = Field(
        description="Cuántos asientos cumplen los filtros; null al paginar con cursor "
        "(así una entidad grande no cuenta en cada página)."
    )
    page: int
    size: int
    next_cursor: str | None = Field(
        description="Cursor de la página siguiente (parámetro cursor); null en la última."
    )


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
