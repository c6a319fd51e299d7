"""REST models of an exchange: where it stands, and what accepting or rejecting it takes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.inputs import DIR3
from services.registro import domain
from services.registro.schemas import Motivo, TextoMotivo


class EstadoIntercambio(StrEnum):
    """Where a received exchange stands: waiting, or decided one way for good."""

    RECIBIDO = "recibido"
    ACEPTADO = "aceptado"
    RECHAZADO = "rechazado"


class RechazoCreate(Motivo):
    """What staff send to reject an exchange: why (it goes back to the origin)."""

    motivo: TextoMotivo = Field(examples=["No es competencia de esta entidad"])


class Origen(BaseModel):
    """The register that sent the exchange and the number and date it gave it there."""

    codigo_entidad_registral: str
    numero_registro: str
    fecha_registro: datetime


class IntercambioRead(BaseModel):
    """A received exchange as the registro keeps it (the raw XML is not repeated here)."""

    id: str
    identificador_intercambio: str = Field(examples=["O00002741_13_00000012"])
    estado: EstadoIntercambio
    origen: Origen
    datos: dict[str, Any] = Field(description="Lo que dice el fichero, sin el contenido de anexos")
    anexos: list[dict[str, Any]] = Field(
        description="Cada anexo: identificador, nombre, recibido_sin_contenido, hash_comprobado…"
    )
    motivo_rechazo: str | None = None
    asiento_id: str | None = None
    recibido_por: str
    recibido_en: datetime
    decidido_por: str | None = None
    decidido_en: datetime | None = None


class AceptacionCreate(BaseModel):
    """What staff may say when accepting an exchange: the oficina that registers it."""

    model_config = ConfigDict(extra="forbid")

    oficina: str | None = Field(
        default=None,
        description="Código DIR3 de la oficina que lo registra (necesaria si la entidad "
        "numera por oficina)",
        examples=["O00002741"],
        json_schema_extra=DIR3,
    )

    @field_validator("oficina")
    @classmethod
    def _valid_oficina(cls, value: str | None) -> str | None:
        return None if value is None else domain.validate_dir3(value)
