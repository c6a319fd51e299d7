"""REST models of representaciones: who grants, who holds, from and until when."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.registro.domain import TipoIdentificador, normalize_identificador
from services.registro.schemas import Motivo


class _Parte(BaseModel):
    """One side of a representation: its identity document and name."""

    model_config = ConfigDict(extra="forbid")

    tipo_identificador: TipoIdentificador
    identificador: str = Field(min_length=1, max_length=17)
    nombre: str = Field(
        min_length=1, max_length=160, description="Nombre y apellidos o razón social"
    )

    @field_validator("identificador")
    @classmethod
    def _valid_identificador(cls, value: str, info: ValidationInfo) -> str:
        tipo = info.data.get("tipo_identificador")
        return value if tipo is None else normalize_identificador(tipo, value)


class RepresentacionCreate(BaseModel):
    """What staff record: who grants, who holds, for how long, and the proof seen."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "poderdante": {
                        "tipo_identificador": "NIF",
                        "identificador": "12345678Z",
                        "nombre": "Lucía García",
                    },
                    "representante": {
                        "tipo_identificador": "NIF",
                        "identificador": "00000000T",
                        "nombre": "Pedro Pérez",
                    },
                    "documento": "Apoderamiento apud acta",
                }
            ]
        },
    )

    poderdante: _Parte
    representante: _Parte
    vigente_desde: date | None = Field(default=None, description="Por defecto, hoy")
    vigente_hasta: date | None = Field(default=None, description="Sin fecha: hasta que se revoque")
    documento: str | None = Field(
        default=None,
        max_length=160,
        description="Dónde consta: apoderamiento apud acta, código del REA, escritura…",
    )


class RevocacionCreate(Motivo):
    """Why a representation ends."""


class RepresentacionRead(BaseModel):
    """A recorded representation, and its revocation if any."""

    id: str
    poderdante: _Parte
    representante: _Parte
    vigente_desde: date
    vigente_hasta: date | None
    documento: str | None
    registrada_por: str
    registrada_en: datetime
    revocada_por: str | None = None
    revocada_en: datetime | None = None
    motivo_revocacion: str | None = None


class RepresentacionPage(BaseModel):
    """One page of representaciones, newest first."""

    items: list[RepresentacionRead]
    total: int
    page: int
    size: int
