"""REST models of pagos: liquidaciones, autoliquidaciones, conceptos, configuration, card forms.

Amounts travel as decimal strings in euros (``"159.00"``): JSON numbers are
refused, so no client rounds a fee through a float on its way in.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonDict

from services.pagos.domain import normalizar_identificador

__all__ = [
    "AnulacionCreate",
    "AutoliquidacionCreate",
    "AutoliquidacionRead",
    "ConceptoCreate",
    "ConceptoRead",
    "ConciliacionRead",
    "ConfiguracionRead",
    "ConfiguracionUpdate",
    "DevolucionCreate",
    "DocumentoRead",
    "InformeCobros",
    "LiquidacionCreate",
    "LiquidacionPage",
    "LiquidacionRead",
    "Obligado",
    "PagoTarjetaRead",
]

IMPORTE_PATRON = r"^\d{1,9}(\.\d{1,2})?$"
# The database keeps expedientes' ids as UUIDs: 36 hex digits and dashes anywhere is not one.
UUID_PATRON = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Importe = Field(pattern=IMPORTE_PATRON, examples=["159.00"], description="Euros, en texto decimal")
TipoIdentificador = Literal["NIF", "NIE", "CIF", "PASAPORTE"]


class Obligado(BaseModel):
    """Who must pay: the interesado shape every contract of the platform uses."""

    model_config = ConfigDict(extra="forbid")

    tipo_identificador: TipoIdentificador
    identificador: str = Field(min_length=1, max_length=20, examples=["12345678Z"])
    nombre: str = Field(min_length=1, max_length=120, description="Nombre o razón social")
    apellido1: str | None = Field(default=None, max_length=60)
    apellido2: str | None = Field(default=None, max_length=60)
    email: str | None = Field(default=None, max_length=160, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @field_validator("identificador")
    @classmethod
    def _identificador(cls, value: str, info: ValidationInfo) -> str:
        tipo = info.data.get("tipo_identificador")
        return normalizar_identificador(tipo, value) if tipo else value


_OBLIGADO_EJEMPLO: JsonDict = {
    "tipo_identificador": "NIF",
    "identificador": "12345678Z",
    "nombre": "Lucía García",
}


class LiquidacionCreate(BaseModel):
    """A liquidación staff notifies (or the tramitador asks for)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "concepto": "Tasa por licencia de obra menor",
                    "importe": "159.00",
                    "obligado": _OBLIGADO_EJEMPLO,
                }
            ]
        },
    )

    concepto: str = Field(min_length=1, max_length=200, examples=["Tasa por licencia de obra"])
    importe: str = Importe
    obligado: Obligado
    expediente_id: str | None = Field(default=None, pattern=UUID_PATRON)
    vencimiento: date | None = Field(default=None, description="Fecha límite de pago")
    tributo: str = Field(
        default="000", pattern=r"^\d{3}$", description="Código de tributo de Cuaderno 60"
    )


class Cuaderno60Read(BaseModel):
    """What the carta de pago prints for the bank."""

    modalidad: int
    emisora: str
    referencia: str
    identificacion: str
    digitos_control: str
    codigo_barras: str


class LiquidacionRead(BaseModel):
    """A liquidación, its Cuaderno 60 data and where to pay it."""

    id: str
    numero: str = Field(examples=["2026/00000042"])
    estado: Literal["pendiente", "pagada", "vencida", "anulada", "devuelta"]
    origen: str
    concepto: str
    importe: str = Field(description="Euros, texto decimal con dos cifras", examples=["159.00"])
    obligado: Obligado
    expediente_id: str | None
    vencimiento: date
    emisora: str
    referencia: str
    identificacion: str
    digitos_control: str
    cuaderno60: Cuaderno60Read
    canal: str | None = Field(description="tarjeta o cuaderno60, una vez pagada")
    justificante_pago: str | None = Field(description="Orden Redsys o NRC del banco")
    pagada_at: datetime | None
    created_at: datetime
    calculo: list[dict[str, str]] | None = None
    enlaces: dict[str, str]


class LiquidacionPage(BaseModel):
    """A page of liquidaciones, newest first."""

    items: list[LiquidacionRead]
    total: int


class AnulacionCreate(BaseModel):
    """Why a liquidación is annulled."""

    model_config = ConfigDict(extra="forbid")
    motivo: str = Field(min_length=3, max_length=1000, examples=["Liquidación emitida por error"])


class DevolucionCreate(BaseModel):
    """A refund of a paid liquidación (the money went back to the obligado)."""

    model_config = ConfigDict(extra="forbid")
    motivo: str = Field(min_length=3, max_length=1000, examples=["Pago duplicado"])


class CondicionSchema(BaseModel):
    """``{"dato": "familia_numerosa", "operador": "igual", "valor": true}``."""

    model_config = ConfigDict(extra="forbid")
    dato: str = Field(min_length=1, max_length=60)
    operador: Literal["igual", "distinto", "menor", "menor_igual", "mayor", "mayor_igual"]
    valor: StrictBool | StrictInt | str


class ExencionSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    motivo: str = Field(min_length=1, max_length=200)
    condiciones: list[CondicionSchema] = Field(min_length=1)


class BonificacionSchema(ExencionSchema):
    porcentaje: str = Field(pattern=r"^\d{1,3}(\.\d{1,2})?$")


class ReglaSchema(BaseModel):
    """How the ordenanza computes a concepto: fija, por_unidad or porcentaje."""

    model_config = ConfigDict(extra="forbid")
    tipo: Literal["fija", "por_unidad", "porcentaje"]
    importe: str | None = Field(default=None, pattern=IMPORTE_PATRON)
    precio_unidad: str | None = Field(default=None, pattern=r"^\d{1,9}(\.\d{1,4})?$")
    porcentaje: str | None = Field(default=None, pattern=r"^\d{1,3}(\.\d{1,4})?$")
    minimo: str | None = Field(default=None, pattern=IMPORTE_PATRON)
    maximo: str | None = Field(default=None, pattern=IMPORTE_PATRON)
    exenciones: list[ExencionSchema] = []
    bonificaciones: list[BonificacionSchema] = []


class ConceptoCreate(BaseModel):
    """A concepto of the ordenanza fiscal that citizens may self-assess."""

    model_config = ConfigDict(extra="forbid")
    nombre: str = Field(min_length=1, max_length=200)
    tributo: str = Field(pattern=r"^\d{3}$")
    regla: ReglaSchema


class ConceptoRead(ConceptoCreate):
    codigo: str


class AutoliquidacionCreate(BaseModel):
    """What a citizen declares for a concepto; staff may name the obligado too."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"concepto": "vado", "declarados": {"unidades": 4}, "obligado": _OBLIGADO_EJEMPLO}
            ]
        },
    )
    concepto: str = Field(min_length=1, max_length=20, description="Código del concepto")
    declarados: dict[str, StrictBool | StrictInt | str] = Field(
        default_factory=dict, examples=[{"base": "12000.00", "familia_numerosa": True}]
    )
    obligado: Obligado | None = None
    expediente_id: str | None = Field(default=None, pattern=UUID_PATRON)


class AutoliquidacionRead(BaseModel):
    """The computed fee, and the liquidación in the citizen's name (none when exempt)."""

    importe: str
    exenta: bool
    desglose: list[dict[str, str]]
    liquidacion: LiquidacionRead | None


class RedsysConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comercio: str = Field(pattern=r"^\d{9}$", description="Ds_Merchant_MerchantCode (FUC)")
    terminal: str = Field(pattern=r"^\d{1,3}$", examples=["001"])
    clave: str | None = Field(
        default=None,
        min_length=32,
        max_length=44,
        description="Clave SHA-256 del comercio en base64. Solo escritura: nunca se devuelve; "
        "si se omite se conserva la guardada.",
        json_schema_extra={"writeOnly": True},
    )
    url: str = Field(pattern=r"^https?://", max_length=500, description="URL del formulario Redsys")

    def __repr__(self) -> str:  # never show the key, whatever logs a model
        return f"RedsysConfig(comercio={self.comercio!r}, terminal={self.terminal!r})"

    __str__ = __repr__


class Cuaderno60Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emisora: str = Field(pattern=r"^\d{6}$", description="Código de emisora del ayuntamiento")


class ConfiguracionUpdate(BaseModel):
    """The tenant's payment channels."""

    model_config = ConfigDict(extra="forbid")
    redsys: RedsysConfig | None = None
    cuaderno60: Cuaderno60Config | None = None


class RedsysConfigRead(BaseModel):
    comercio: str
    terminal: str
    url: str
    clave_configurada: bool


class ConfiguracionRead(BaseModel):
    """The configuration as shown: the key only as configured or not."""

    redsys: RedsysConfigRead | None
    cuaderno60: Cuaderno60Config | None


class PagoTarjetaRead(BaseModel):
    """The form a browser posts to Redsys (field names as Redsys wants them)."""

    model_config = ConfigDict(populate_by_name=True)

    url: str
    ds_signature_version: str = Field(alias="Ds_SignatureVersion")
    ds_merchant_parameters: str = Field(alias="Ds_MerchantParameters")
    ds_signature: str = Field(alias="Ds_Signature")
    orden: str = Field(description="Número de pedido de este intento")


class InformeCobros(BaseModel):
    """What an import of the bank's cobros file did, line by line."""

    importacion_id: str
    aplicados: list[dict[str, str | int]]
    duplicados: list[dict[str, str | int]]
    desconocidos: list[dict[str, str | int]]
    rechazados: list[dict[str, str | int]]
    ilegibles: list[dict[str, str | int]]


class Suma(BaseModel):
    """How many, and how much in euros."""

    numero: int
    importe: str


class PagadasRead(BaseModel):
    total: str
    por_canal: dict[str, Suma] = Field(description="tarjeta, cuaderno60")


class ConciliacionRead(BaseModel):
    """The reconciliation of a period: issued, paid by channel, pending, bank incidents."""

    desde: date
    hasta: date
    emitidas: Suma = Field(description="Liquidaciones emitidas en el periodo")
    pendientes: Suma = Field(description="De las emitidas, las que siguen sin pagar (o vencidas)")
    por_estado: dict[str, Suma] = Field(description="Las emitidas, por su estado de hoy")
    pagadas: PagadasRead = Field(description="Cobrado en el periodo, por canal")
    devueltas: Suma
    incidencias_banco: list[dict[str, str]] = Field(
        description="Cobros del banco sin liquidación o no aplicables (máx. 200)"
    )


class DocumentoRead(BaseModel):
    """A carta de pago or justificante de pago: pending, issued (with its CSV) or failed."""

    tipo: Literal["carta_de_pago", "justificante_pago"]
    estado: Literal["pendiente", "emitido", "fallido"]
    csv: str | None = None
    url_verificacion: str | None = None
    url_descarga: str | None = Field(default=None, description="El PDF sellado, sin cuenta")
    motivo: str | None = None
