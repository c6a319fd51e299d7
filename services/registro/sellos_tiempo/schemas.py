"""REST model of an asiento's time-stamp: where it stands, and its token once sealed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.registro.sellos_tiempo.domain import EstadoSello


class SelloTiempoRead(BaseModel):
    """The time-stamp of an asiento as the API shows it."""

    asiento_id: str
    estado: EstadoSello
    intento: int | None = None
    algoritmo: str | None = Field(default=None, examples=["sha256"])
    huella: str | None = Field(
        default=None, description="SHA-256 (hexadecimal) de los datos sellados."
    )
    solicitado_en: datetime | None = None
    gen_time: datetime | None = Field(
        default=None, description="Instante del sello (genTime del token, RFC 3161)."
    )
    serial: str | None = Field(default=None, description="Número de serie del token.")
    politica: str | None = Field(default=None, description="OID de la política de la TSA.")
    desfase_ms: int | None = Field(
        default=None,
        description="Milisegundos entre la fecha de registro del asiento y el genTime del sello.",
    )
    token: str | None = Field(
        default=None, description="El TimeStampToken (DER) en base64, como el fichero .tst."
    )
    motivo: str | None = None
    codigo: str | None = None
