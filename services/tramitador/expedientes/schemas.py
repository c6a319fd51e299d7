"""REST models of the expedientes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from stdnum.es import cif, nie, nif

from services.tramitador.documentos.schemas import DocumentoRead
from services.tramitador.expedientes.domain import EstadoExpediente


class TipoIdentificador(StrEnum):
    """Kinds of identity document of an interesado."""

    NIF = "NIF"
    NIE = "NIE"
    CIF = "CIF"
    PASAPORTE = "PASAPORTE"


_VALIDADORES = {"NIF": nif, "NIE": nie, "CIF": cif}


class InteresadoCreate(BaseModel):
    """An interesado of an expediente started de oficio."""

    tipo_identificador: TipoIdentificador
    identificador: str = Field(min_length=1, max_length=20)
    nombre: str = Field(min_length=1, max_length=200)
    apellido1: str | None = Field(default=None, max_length=100)
    apellido2: str | None = Field(default=None, max_length=100)
    municipio: str | None = Field(
        default=None,
        pattern=r"^\d{5}$",
        description="Código INE del municipio de residencia: sus festivos cuentan (art. 30.6)",
    )

    @field_validator("identificador")
    @classmethod
    def _valido(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip().upper()
        tipo = info.data.get("tipo_identificador")
        validator = _VALIDADORES.get(tipo.value) if tipo is not None else None
        if validator is not None and not validator.is_valid(value):
            raise ValueError(f"{tipo} no válido: {value}")
        return value


class ExpedienteCreate(BaseModel):
    """An expediente started de oficio (art. 58), without an asiento."""

    procedimiento: str = Field(min_length=1, max_length=60, examples=["expediente-sancionador"])
    asunto: str = Field(min_length=1, max_length=2000)
    interesados: list[InteresadoCreate] = Field(min_length=1, max_length=50)


class ExpedienteRead(BaseModel):
    """A case file as listed."""

    id: str
    numero: str = Field(examples=["EXP/2026/000001"])
    anio: int
    secuencia: int
    procedimiento: str
    procedimiento_version: int
    estado: EstadoExpediente
    fase: str
    iniciacion: str
    unidad: str | None
    asunto: str | None
    asiento_id: str | None
    asiento_numero: str | None
    fecha_inicio: datetime
    # The interesados as the asiento (or the acuerdo de inicio) recorded them.
    interesados: list[dict[str, Any]]
    resolucion: str | None
    silencio: str | None


class TramiteRead(BaseModel):
    """A task of a phase and whom it is assigned to."""

    id: str
    fase: str
    codigo: str
    nombre: str
    informe: bool
    unidad: str | None
    rol: str | None
    persona: str | None
    estado: str
    vencimiento: date | None
    sentido: str | None


class PlazoRead(BaseModel):
    """A plazo of the expediente, computed with the council's calendar."""

    id: str
    tipo: str
    inicio: date
    vencimiento: date
    estado: str
    dias_habiles_restantes: int | None = Field(
        description="Días hábiles que quedan (negativo: vencido); nulo si no corre"
    )
    dias_suspendidos: int


class HistorialRead(BaseModel):
    """One entry of the expediente's history."""

    at: datetime
    actor: str
    accion: str
    fase_desde: str | None
    fase_hacia: str | None
    datos: dict[str, Any]


class AccionRead(BaseModel):
    """An action the caller may take now; blocked while ``condiciones_pendientes`` is not empty."""

    codigo: str
    nombre: str
    tipo: str
    sentidos: list[str] | None
    condiciones_pendientes: list[str]


class IncidenciaRead(BaseModel):
    """A request another service could not carry out (a notification, a fee), which staff
    must resolve: the expediente waits for it, visibly."""

    id: str
    origen: str = Field(description="notificacion o pago")
    codigo: str = Field(examples=["sin-datos-de-canal", "importe-desconocido"])
    motivo: str
    detalles: list[dict[str, Any]]
    solicitud_id: str
    estado: str = Field(description="abierta o resuelta")
    creada_at: datetime
    resuelta_at: datetime | None
    resuelta_por: str | None


class ExpedienteDetalle(ExpedienteRead):
    """An expediente with its phase, open trámites, plazos, history and the caller's actions."""

    fase_nombre: str
    tramites: list[TramiteRead]
    plazos: list[PlazoRead]
    historial: list[HistorialRead]
    acciones: list[AccionRead]
    documentos: list[DocumentoRead]
    incidencias: list[IncidenciaRead] = Field(
        default_factory=list, description="Incidencias del expediente (sólo para el personal)"
    )


class DireccionPostal(BaseModel):
    """Where a paper notification is delivered (as the notificaciones service asks it)."""

    model_config = ConfigDict(extra="forbid")

    direccion: str = Field(min_length=1, max_length=200, examples=["Calle Mayor 1, 2º B"])
    codigo_postal: str = Field(pattern=r"^\d{5}$", examples=["03001"])
    municipio: str = Field(min_length=1, max_length=100, examples=["Alicante/Alacant"])
    provincia: str = Field(min_length=1, max_length=100, examples=["Alicante"])


class DatosDeCanal(BaseModel):
    """How to reach one interesado of the expediente (art. 41): what staff add to notify."""

    model_config = ConfigDict(extra="forbid")

    identificador: str = Field(min_length=1, max_length=20, examples=["12345678Z"])
    eligio_electronico: bool | None = Field(
        default=None, description="Eligió relacionarse electrónicamente (art. 14.1)"
    )
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    movil: str | None = Field(default=None, pattern=r"^\+?\d{9,15}$")
    direccion_postal: DireccionPostal | None = None


class IncidenciaResolver(BaseModel):
    """What staff give to resolve an incidencia; the request is then sent again."""

    model_config = ConfigDict(extra="forbid")

    interesados: list[DatosDeCanal] = Field(
        default_factory=list, max_length=50, description="Datos de canal (notificación)"
    )
    importes: dict[str, Annotated[str, Field(pattern=r"^(0|[1-9]\d{0,8})(\.\d{1,2})?$")]] = Field(
        default_factory=dict,
        max_length=50,
        description="Importe en euros por concepto de tasa, cadena decimal (pago)",
        examples=[{"icio": "312.40"}],
    )
    motivo: str | None = Field(default=None, max_length=2000)

    @field_validator("importes")
    @classmethod
    def _centimos(cls, value: dict[str, str]) -> dict[str, str]:
        """Two decimals always, as money travels on the bus ("312.4" → "312.40")."""
        return {k: f"{Decimal(v):.2f}" for k, v in value.items()}


class ExpedienteList(BaseModel):
    """Expedientes matching a query; ``next_cursor`` continues it."""

    items: list[ExpedienteRead]
    next_cursor: str | None = None


class AccionRequest(BaseModel):
    """The data an action needs (each action reads the fields it knows)."""

    sentido: str | None = Field(default=None, max_length=30, examples=["favorable"])
    motivo: str | None = Field(default=None, max_length=5000)
    documentos: list[str] = Field(
        default_factory=list, max_length=50, description="Documentos aportados (códigos)"
    )
    renuncia: bool | None = Field(
        default=None, description="Los interesados renuncian a alegar (art. 82.3)"
    )
    unidad: str | None = Field(default=None, max_length=100, description="Unidad del informe")
    nombre: str | None = Field(default=None, max_length=300, description="Nombre del informe")
