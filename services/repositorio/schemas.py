"""REST models of the repositorio API (what frontends send and receive)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.common.inputs import DIR3
from services.repositorio.domain import (
    EstadoElaboracion,
    OrigenDocumento,
    TipoDocumental,
    fecha_captura,
    validate_dir3,
    validate_identificador_eni,
)


class MetadatosCreate(BaseModel):
    """The ENI metadata a client sends in the ``metadatos`` part of an upload.

    ``identificador``, ``formato`` and ``version_nti`` are not sent: the
    repositorio derives them.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "organo": "L01030149",
                    "origen": "administracion",
                    "estado_elaboracion": "EE01",
                    "tipo_documental": "TD01",
                }
            ]
        },
    )

    organo: str = Field(
        description="Código DIR3 del órgano", examples=["L01030149"], json_schema_extra=DIR3
    )
    origen: OrigenDocumento
    estado_elaboracion: EstadoElaboracion = Field(
        description="EE01 original, EE02 copia auténtica con cambio de formato, EE03 copia "
        "auténtica de papel, EE04 copia parcial auténtica, EE99 otros"
    )
    # Declared after estado_elaboracion: its validator reads the estado already checked.
    identificador_documento_origen: str | None = Field(
        default=None,
        validate_default=True,
        description="Identificador ENI del documento copiado; obligatorio con EE02 y EE04",
        json_schema_extra={"pattern": r"^\s*ES_[A-Z][A-Z0-9]{8}_[0-9]{4}_[A-Za-z0-9]{30}\s*$"},
    )
    tipo_documental: TipoDocumental = Field(
        description="TD01 resolución, TD02 acuerdo, ... TD99 otros (NTI de Documento electrónico)"
    )
    fecha_captura: AwareDatetime | None = Field(
        default=None, description="Cuándo se capturó el documento; por defecto, al almacenarlo"
    )

    @field_validator("organo")
    @classmethod
    def _valid_dir3(cls, value: str) -> str:
        return validate_dir3(value)

    @field_validator("fecha_captura")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        # Checked here, with the metadata, so a refused upload stores no byte.
        return None if value is None else fecha_captura(value, datetime.now(UTC))

    @field_validator("identificador_documento_origen")
    @classmethod
    def _origen_of_a_copy(cls, value: str | None, info: ValidationInfo) -> str | None:
        estado = info.data.get("estado_elaboracion")
        if value is None:
            if estado is not None and estado.requiere_documento_origen:
                raise ValueError(f"obligatorio cuando estado_elaboracion es {estado.value}")
            return None
        return validate_identificador_eni(value)


class MetadatosEni(BaseModel):
    """The ENI metadata recorded for a version (the NTI's minimum set)."""

    version_nti: str
    identificador: str = Field(examples=["ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4"])
    organo: str
    fecha_captura: datetime
    origen: OrigenDocumento
    estado_elaboracion: EstadoElaboracion
    identificador_documento_origen: str | None
    tipo_documental: TipoDocumental
    formato: str = Field(examples=["PDF"])


class VersionRead(BaseModel):
    """One stored version of a documento: its content's fingerprint and its metadata."""

    version: int = Field(ge=1)
    nombre: str
    mime: str
    formato: str
    tamano: int = Field(description="Tamaño en bytes")
    sha256: str
    metadatos: MetadatosEni
    almacenado_en: datetime
    almacenado_por: str


class DocumentoRead(BaseModel):
    """A documento with its current (latest) version."""

    id: str
    identificador: str
    organo: str
    creado_en: datetime
    creado_por: str
    versiones: int = Field(description="Cuántas versiones tiene")
    version_actual: VersionRead
    csv: str | None = Field(
        default=None, description="CSV de la versión actual, si se emitió con uno"
    )
    url_verificacion: str | None = Field(
        default=None, description="Dirección pública de verificación y descarga por el CSV"
    )


class VersionList(BaseModel):
    """Every version of a documento, oldest first."""

    documento_id: str
    items: list[VersionRead]
