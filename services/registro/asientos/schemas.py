"""REST models of asientos (what frontends send and receive), with every SICRES 3.0 field."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.common.inputs import DIR3
from services.registro.anexos.domain import MAX_ANEXOS
from services.registro.anexos.schemas import AnexoCreate, AnexoRead
from services.registro.asientos.domain import EstadoAsiento
from services.registro.domain import (
    Canal,
    CanalPreferente,
    DocumentacionFisica,
    TipoAsiento,
    TipoIdentificador,
    TipoTransporte,
    canal_preferente_incompleto,
    normalize_identificador,
    validate_codigo_registral,
    validate_dir3,
)
from services.registro.schemas import Motivo, TextoMotivo


def _blank_to_none(value: Any) -> Any:
    """Optional text left blank by a form means absent, not an empty value."""
    if isinstance(value, str) and not value.strip():
        return None
    return value.strip() if isinstance(value, str) else value


class Persona(BaseModel):
    """Who an interesado or a representante is and how to reach them (SICRES De_Interesado).

    Lengths are SICRES 3.0's, so every asiento can travel to another register whole.
    A person has a ``nombre``; an entity (CIF) has a ``razon_social`` (an entity sent
    with only ``nombre``, as older clients did, has it read as its razón social).
    """

    model_config = ConfigDict(extra="forbid")

    tipo_identificador: TipoIdentificador
    identificador: str = Field(min_length=1, max_length=17, examples=["12345678Z"])
    nombre: str | None = Field(default=None, min_length=1, max_length=30)
    apellido1: str | None = Field(default=None, max_length=30)
    apellido2: str | None = Field(default=None, max_length=30)
    razon_social: str | None = Field(default=None, min_length=1, max_length=80)
    pais: str | None = Field(default=None, max_length=4, description="Código de país (INE)")
    provincia: str | None = Field(
        default=None, pattern=r"^\d{2}$", description="Código INE de provincia"
    )
    municipio: str | None = Field(
        default=None, pattern=r"^\d{1,5}$", description="Código INE de municipio"
    )
    direccion: str | None = Field(default=None, max_length=160)
    codigo_postal: str | None = Field(default=None, pattern=r"^\d{5}$")
    email: str | None = Field(default=None, max_length=160, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    telefono: str | None = Field(default=None, max_length=20, pattern=r"^\+?[0-9 ]{6,20}$")
    deh: str | None = Field(
        default=None, max_length=160, description="Dirección electrónica habilitada"
    )
    canal_preferente: CanalPreferente | None = Field(
        default=None,
        description="01 dirección postal, 02 dirección electrónica habilitada, "
        "03 comparecencia electrónica",
    )

    @model_validator(mode="before")
    @classmethod
    def _entity_name(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: _blank_to_none(v) for k, v in data.items()}
        if (
            data.get("tipo_identificador") == TipoIdentificador.CIF.value
            and data.get("razon_social") is None
            and data.get("nombre") is not None
        ):
            partes = [data.pop(k, None) for k in ("nombre", "apellido1", "apellido2")]
            data["razon_social"] = " ".join(p for p in partes if p)
        return data

    @field_validator("identificador")
    @classmethod
    def _valid_identificador(cls, value: str, info: ValidationInfo) -> str:
        tipo = info.data.get("tipo_identificador")
        if tipo is None:  # its own error is reported on tipo_identificador
            return value
        return normalize_identificador(tipo, value)

    @model_validator(mode="after")
    def _complete(self) -> Persona:
        if self.tipo_identificador is TipoIdentificador.CIF:
            if self.razon_social is None:
                raise ValueError("una entidad (CIF) necesita razon_social")
        elif self.nombre is None:
            raise ValueError("una persona necesita nombre")
        motivo = canal_preferente_incompleto(
            self.canal_preferente,
            direccion=self.direccion,
            codigo_postal=self.codigo_postal,
            deh=self.deh,
        )
        if motivo is not None:
            raise ValueError(motivo)
        return self

    def nombre_completo(self) -> str:
        """The name as a person reads it: razón social, or name and surnames."""
        if self.razon_social is not None:
            return self.razon_social
        return " ".join(p for p in (self.nombre, self.apellido1, self.apellido2) if p)


class Interesado(Persona):
    """A person or company party to the asiento, and who represents them if anyone does."""

    representante: Persona | None = None
    observaciones: str | None = Field(default=None, max_length=160)


class CodigosRegistrales(BaseModel):
    """Where an asiento comes from or goes to in the SICRES network (DIR3 codes)."""

    model_config = ConfigDict(extra="forbid")

    entidad_registral: str | None = Field(
        default=None, description="Oficina o entidad registral", examples=["O00002741"]
    )
    unidad_tramitacion: str | None = Field(default=None, examples=["L01030149"])

    @field_validator("entidad_registral", "unidad_tramitacion")
    @classmethod
    def _valid_codigo(cls, value: str | None) -> str | None:
        return None if value is None else validate_codigo_registral(value)


class OrigenAsiento(CodigosRegistrales):
    """Where an asiento was first registered, when it comes from another register."""

    numero_registro: str | None = Field(
        default=None, max_length=20, description="Número que le dio el registro de origen"
    )
    fecha_registro: datetime | None = Field(
        default=None, description="Fecha y hora de registro en el origen"
    )


class Transporte(BaseModel):
    """How paper came in: the carrier and its reference (SICRES *_Transporte_Entrada)."""

    model_config = ConfigDict(extra="forbid")

    tipo: TipoTransporte
    numero: str | None = Field(default=None, max_length=20, description="Nº de envío o similar")


class AsientoCreate(BaseModel):
    """What staff or a citizen send to register an asiento (every SICRES 3.0 field)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tipo": "entrada",
                    "resumen": "Solicitud de licencia de obra menor",
                    "unidad_destino": "L01030149",
                    "procedimiento": "generico",
                    "interesados": [
                        {
                            "tipo_identificador": "NIF",
                            "identificador": "12345678Z",
                            "nombre": "Lucía",
                            "apellido1": "García",
                        }
                    ],
                }
            ]
        },
    )

    tipo: TipoAsiento
    resumen: str = Field(min_length=1, max_length=240)
    unidad_destino: str = Field(
        description="Código DIR3 de la unidad de destino",
        examples=["L01030149"],
        json_schema_extra=DIR3,
    )
    oficina: str | None = Field(
        default=None,
        description="Código DIR3 de la oficina de registro donde se presenta",
        examples=["O00002741"],
        json_schema_extra=DIR3,
    )
    origen: OrigenAsiento | None = Field(
        default=None,
        description="Registro de origen (entidad registral, unidad, número y fecha), si el "
        "asiento viene de otra administración",
    )
    entidad_registral_destino: str | None = Field(
        default=None, description="Entidad registral de destino, si no es esta entidad"
    )
    interesados: list[Interesado] = Field(min_length=1, max_length=100)
    # Catalogue code of the procedimiento the request starts (e.g. "generico").
    procedimiento: str | None = Field(default=None, min_length=1, max_length=50)
    codigo_asunto: str | None = Field(
        default=None, max_length=16, description="Código de asunto según destino"
    )
    referencia_externa: str | None = Field(default=None, max_length=16)
    numero_expediente: str | None = Field(default=None, max_length=80)
    transporte: Transporte | None = None
    contacto_usuario: str | None = Field(
        default=None, max_length=160, description="Cómo contactar con quien registra"
    )
    documentacion_fisica: DocumentacionFisica = Field(
        default=DocumentacionFisica.NINGUNA,
        description="1 acompaña documentación física requerida, 2 complementaria, 3 ninguna",
    )
    observaciones: str | None = Field(default=None, max_length=50)
    expone: str | None = Field(default=None, max_length=4000)
    solicita: str | None = Field(default=None, max_length=4000)
    corrige: str | None = Field(
        default=None,
        description="Id del asiento que este corrige: un asiento no se edita, se corrige "
        "con otro que lo cita",
    )
    anexos: list[AnexoCreate] = Field(
        default_factory=list,
        max_length=MAX_ANEXOS,
        description=f"Documentos anexados, con su contenido en base64 (como SICRES): como "
        f"máximo {MAX_ANEXOS}, 10 MB cada uno y 15 MB en total; se guardan en el repositorio",
    )

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: _blank_to_none(v) for k, v in data.items()}
        return data

    @field_validator("unidad_destino")
    @classmethod
    def _valid_dir3(cls, value: str) -> str:
        return validate_dir3(value)

    @field_validator("oficina")
    @classmethod
    def _valid_oficina(cls, value: str | None) -> str | None:
        return None if value is None else validate_dir3(value)

    @field_validator("entidad_registral_destino")
    @classmethod
    def _valid_entidad(cls, value: str | None) -> str | None:
        return None if value is None else validate_codigo_registral(value)

    @field_validator("corrige")
    @classmethod
    def _valid_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("no es el id de un asiento") from None


class AnulacionCreate(Motivo):
    """What staff send to annul an asiento: why."""

    motivo: TextoMotivo = Field(examples=["Registrado por duplicado"])


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
    canal: Canal = Canal.PRESENCIAL
    oficina: str | None = None
    resumen: str
    unidad_destino: str
    origen: OrigenAsiento | None = None
    entidad_registral_destino: str | None = None
    procedimiento: str | None
    interesados: list[Interesado]
    codigo_asunto: str | None = None
    referencia_externa: str | None = None
    numero_expediente: str | None = None
    transporte: Transporte | None = None
    contacto_usuario: str | None = None
    documentacion_fisica: DocumentacionFisica = DocumentacionFisica.NINGUNA
    observaciones: str | None = None
    expone: str | None = None
    solicita: str | None = None
    corrige: str | None = None
    anexos: list[AnexoRead] = Field(
        default_factory=list,
        description="Lo que el asiento registra de cada anexo; el contenido está en el "
        "repositorio (documento_id)",
    )
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
