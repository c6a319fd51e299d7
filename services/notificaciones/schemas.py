"""REST models of notificaciones: what staff send and read, and what a citizen sees."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from services.notificaciones.domain import (
    Canal,
    Estado,
    ResultadoIntento,
    identificador_valido,
)

__all__ = [
    "AccesoRead",
    "AvisoRead",
    "DireccionPostal",
    "DocumentoNotificado",
    "IntentoCreate",
    "IntentoRead",
    "InteresadoNotificado",
    "NotificacionCiudadano",
    "NotificacionCreate",
    "NotificacionList",
    "NotificacionRead",
    "NotificacionesCreadas",
    "PublicacionCreate",
    "Representante",
]

TipoIdentificador = Literal["NIF", "NIE", "CIF", "PASAPORTE"]


def _solo_iso(value: object) -> object:
    """pydantic reads a JSON number as a Unix time; the documents promise ISO 8601 text."""
    if isinstance(value, int | float):
        raise ValueError("debe ser una fecha en ISO 8601, no un número")
    return value


def _compacto(value: str) -> str:
    return "".join(value.split()).replace("-", "").upper()


class _Identificado(BaseModel):
    """Somebody named by an identity document whose check character is verified."""

    model_config = ConfigDict(extra="forbid")

    tipo_identificador: TipoIdentificador
    identificador: str = Field(min_length=3, max_length=20, examples=["12345678Z"])

    @model_validator(mode="after")
    def _documento_valido(self) -> _Identificado:
        self.identificador = _compacto(self.identificador)
        if not identificador_valido(self.tipo_identificador, self.identificador):
            raise ValueError(
                f"identificador: {self.identificador} no es un {self.tipo_identificador} válido"
            )
        return self


class Representante(_Identificado):
    """The recorded representative of an interesado (art. 5): may open the notification."""

    nombre: str = Field(min_length=1, max_length=200)


class DireccionPostal(BaseModel):
    """Where a paper notification is delivered."""

    model_config = ConfigDict(extra="forbid")

    direccion: str = Field(min_length=1, max_length=200, examples=["Calle Mayor 1, 2º B"])
    codigo_postal: str = Field(pattern=r"^\d{5}$", examples=["03001"])
    municipio: str = Field(min_length=1, max_length=100, examples=["Alicante/Alacant"])
    provincia: str = Field(min_length=1, max_length=100, examples=["Alicante"])


class InteresadoNotificado(_Identificado):
    """One addressee of the notification and how to reach them."""

    nombre: str = Field(min_length=1, max_length=200, description="Nombre o razón social")
    eligio_electronico: bool = Field(
        default=False,
        description="Una persona física que eligió relacionarse electrónicamente (art. 14.1).",
    )
    otro_sujeto_14_2: bool = Field(
        default=False,
        description="Obligado por el art. 14.2 aunque no sea persona jurídica (colegiado en "
        "ejercicio, empleado público, representante de un obligado).",
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Para el aviso (art. 41.6)",
    )
    movil: str | None = Field(
        default=None, pattern=r"^\+?\d{9,15}$", description="Para el aviso por SMS (art. 41.6)"
    )
    idioma: Literal["es", "va"] = Field(default="es", description="Idioma de los avisos")
    direccion_postal: DireccionPostal | None = None
    representante: Representante | None = None


class NotificacionCreate(BaseModel):
    """What staff notify: one document, to each interesado, within an expediente."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "documento_id": "0b9e4b8e-7c1d-4a5f-9a43-2f1d6c8e5b10",
                    "concepto": "Resolución de la licencia de obra menor",
                    "interesados": [
                        {
                            "tipo_identificador": "NIF",
                            "identificador": "12345678Z",
                            "nombre": "Lucía García",
                            "eligio_electronico": True,
                            "email": "lucia@example.org",
                        }
                    ],
                }
            ]
        },
    )

    documento_id: str = Field(
        pattern=r"^[0-9a-fA-F-]{36}$", description="Documento del repositorio que se notifica"
    )
    expediente_id: str | None = Field(default=None, min_length=1, max_length=100)
    concepto: str = Field(
        min_length=1,
        max_length=500,
        description="Lo único que ve el interesado antes de abrirla, con el emisor (art. 43.1)",
    )
    interesados: list[InteresadoNotificado] = Field(min_length=1, max_length=50)


class DocumentoNotificado(BaseModel):
    """The exact version of the document a notification carries, and, when it was issued
    with a CSV, where its addressee downloads it once practicada."""

    documento_id: str
    version: int | None = None
    nombre: str | None = None
    csv: str | None = Field(default=None, description="Código Seguro de Verificación")
    url_verificacion: str | None = Field(
        default=None, description="Dirección pública de verificación del CSV"
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="Descarga pública del documento por su CSV (art. 27.3.c de la Ley 39/2015)"
    )
    @property
    def descarga(self) -> str | None:
        """The public download of a document issued with a CSV: anybody holding the code
        may check and download the document, which is why it is shown only once opened."""
        return f"{self.url_verificacion}/documento" if self.url_verificacion else None


class IntentoCreate(BaseModel):
    """One postal delivery attempt as the postal operator reports it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"resultado": "ausente", "en": "2026-01-15T10:00:00+01:00"}]
        },
    )

    resultado: ResultadoIntento
    en: datetime = Field(description="Día y hora del intento, con zona horaria")
    receptor_nombre: str | None = Field(default=None, min_length=1, max_length=200)
    receptor_nif: str | None = Field(default=None, min_length=3, max_length=20)

    _en_iso = field_validator("en", mode="before")(_solo_iso)

    @model_validator(mode="after")
    def _entrega_con_receptor(self) -> IntentoCreate:
        if self.en.tzinfo is None:
            raise ValueError("en: la fecha del intento debe llevar zona horaria")
        if self.resultado is ResultadoIntento.ENTREGADA and not (
            self.receptor_nombre and self.receptor_nif
        ):
            raise ValueError(
                "receptor_nombre: una entrega debe indicar el nombre y el NIF de quien la recibe"
            )
        return self


class IntentoRead(BaseModel):
    """A recorded delivery attempt; ``valido`` false when it did not meet art. 42.2."""

    resultado: ResultadoIntento
    en: datetime
    receptor_nombre: str | None = None
    receptor_nif: str | None = None
    valido: bool
    motivo: str | None = None
    registrado_por: str
    registrado_en: datetime


class PublicacionCreate(BaseModel):
    """The anuncio in the BOE's tablón edictal (art. 44) that makes the notification."""

    model_config = ConfigDict(extra="forbid")

    fecha: date = Field(description="Día de publicación en el BOE", examples=["2026-01-20"])
    referencia: str = Field(
        min_length=1, max_length=50, examples=["BOE-N-2026-123456"], description="Anuncio"
    )

    _fecha_iso = field_validator("fecha", mode="before")(_solo_iso)


class AvisoRead(BaseModel):
    """An aviso (art. 41.6) of the notification and how its sending went."""

    canal: Literal["email", "sms"]
    destino: str
    estado: Literal["pendiente", "enviando", "enviado", "fallido", "incierto"]
    intentos: int
    proximo_en: datetime | None = None
    enviado_en: datetime | None = None
    error: str | None = Field(default=None, description="Por qué falló (visible al personal)")


class NotificacionRead(BaseModel):
    """A notification as staff see it."""

    id: str
    estado: Estado
    canal: Canal
    documento: DocumentoNotificado
    expediente_id: str | None
    concepto: str
    emisor: str
    interesado: InteresadoNotificado
    origen: Literal["api", "tramitador"]
    solicitud_id: str | None = None
    creada_en: datetime
    puesta_en: datetime | None = None
    vence_en: datetime | None = None
    efectos_en: datetime | None = Field(
        default=None, description="Instante de la práctica, el rechazo o la expiración"
    )
    fecha_legal: date | None = Field(
        default=None, description="Día (de la entidad) desde el que se cuentan los plazos"
    )
    publicacion: PublicacionCreate | None = None
    motivo: str | None = None
    intentos: list[IntentoRead] = Field(default_factory=list)
    avisos: list[AvisoRead] = Field(default_factory=list)


class NotificacionesCreadas(BaseModel):
    """The notifications one request created, one per interesado."""

    items: list[NotificacionRead]


class NotificacionList(BaseModel):
    """A page of notifications, newest first."""

    items: list[NotificacionRead]


class NotificacionCiudadano(BaseModel):
    """What the addressee sees in their carpeta: before opening, only sender and concepto."""

    id: str
    estado: Estado
    canal: Canal
    emisor: str
    concepto: str
    puesta_en: datetime | None = None
    vence_en: datetime | None = None
    efectos_en: datetime | None = None
    fecha_legal: date | None = None
    documento: DocumentoNotificado | None = Field(
        default=None, description="Sólo una vez practicada"
    )


class AccesoRead(NotificacionCiudadano):
    """The opened notification: practicada, with its document."""

    documento: DocumentoNotificado
