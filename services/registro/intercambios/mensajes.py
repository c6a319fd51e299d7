"""SICRES 3.0 control messages (De_Mensaje): what a register answers about an exchange.

The register that receives a Fichero_Intercambio_SICRES_3 acknowledges it (ACK), and
once it has registered it confirms the number and date it gave it (confirmación); a
message it cannot process gets an error. A rejection is not a message: the file goes
back to its origin with Tipo_Anotacion 04 (``fichero_de_rechazo``). Pure: no I/O but
reading the bundled XSD, copied unchanged into ``sicres3/``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from lxml import etree

from services.registro.intercambios.sicres import (
    FicheroInvalido,
    fecha_hora,
    leer_fecha_hora,
    zona_de_entidad,
)

__all__ = [
    "ANOTACION_RECHAZO",
    "MAX_FICHEROS",
    "Mensaje",
    "SCHEMA_FILE",
    "TipoMensaje",
    "build_mensaje",
    "fichero_de_rechazo",
    "parse_mensaje",
]

SCHEMA_FILE = Path(__file__).parent / "sicres3" / "mensaje.xsd"
ROOT = "De_Mensaje"
# Tipo_Anotacion of a file sent back to its origin because the destination rejects it.
ANOTACION_RECHAZO = "04"
# The schema lists at most ten Identificador_Fichero in a message.
MAX_FICHEROS = 10
_OBSERVACIONES_APUNTE = 50


class TipoMensaje(StrEnum):
    """Tipo_Mensaje of SICRES 3.0."""

    ACK = "01"
    CONFIRMACION = "02"
    ERROR = "03"


@dataclass(frozen=True)
class Mensaje:
    """A De_Mensaje, in the registro's terms.

    ``codigo_entidad_origen`` is the register that sends the message (for an ACK,
    the one that received the exchange); ``numero_registro_destino`` and
    ``fecha_registro_destino`` are what a confirmation confirms.
    """

    codigo_entidad_origen: str
    codigo_entidad_destino: str
    identificador_intercambio: str
    tipo: TipoMensaje
    descripcion: str | None = None
    numero_registro_destino: str | None = None
    fecha_registro_destino: datetime | None = None
    indicador_prueba: bool = False
    identificadores_fichero: tuple[str, ...] = ()
    codigo_error: str | None = None


@functools.cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE)))


def _sub(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, name).text = text


def build_mensaje(mensaje: Mensaje) -> bytes:
    """The message as a De_Mensaje document (UTF-8), checked against the schema.

    A date-time is written in the zone the receiver reads it in: the one its sender's
    code implies, as for exchange files.
    """
    if mensaje.tipo is TipoMensaje.CONFIRMACION and (
        mensaje.numero_registro_destino is None or mensaje.fecha_registro_destino is None
    ):
        raise ValueError("una confirmación lleva el número y la fecha de registro en destino")
    root = etree.Element(ROOT)
    _sub(root, "Codigo_Entidad_Registral_Origen", mensaje.codigo_entidad_origen)
    _sub(root, "Codigo_Entidad_Registral_Destino", mensaje.codigo_entidad_destino)
    _sub(root, "Identificador_Intercambio", mensaje.identificador_intercambio)
    _sub(root, "Tipo_Mensaje", mensaje.tipo.value)
    if mensaje.descripcion is not None:
        _sub(root, "Descripcion_Mensaje", mensaje.descripcion[:1024])
    if mensaje.numero_registro_destino is not None:
        _sub(root, "Numero_Registro_Entrada_Destino", mensaje.numero_registro_destino)
    if mensaje.fecha_registro_destino is not None:
        zona = zona_de_entidad(mensaje.codigo_entidad_origen)
        _sub(root, "Fecha_Hora_Entrada_Destino", fecha_hora(mensaje.fecha_registro_destino, zona))
    _sub(root, "Indicador_Prueba", "1" if mensaje.indicador_prueba else "0")
    for identificador in mensaje.identificadores_fichero[:MAX_FICHEROS]:
        _sub(root, "Identificador_Fichero", identificador)
    if mensaje.codigo_error is not None:
        _sub(root, "Codigo_Error", mensaje.codigo_error)
    schema = _schema()
    if not schema.validate(root):
        raise FicheroInvalido([(e.line, e.message) for e in schema.error_log])
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data


def _parser() -> etree.XMLParser:
    """No DTDs, entities or network: a message comes from outside."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse_mensaje(data: bytes) -> Mensaje:
    """Validates and reads a De_Mensaje; raises FicheroInvalido on any problem."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise FicheroInvalido([(exc.lineno, str(exc.msg))]) from None
    schema = _schema()
    if not schema.validate(root):
        raise FicheroInvalido([(e.line, e.message) for e in schema.error_log])

    def texto(name: str) -> str | None:
        value = root.findtext(name)
        return value.strip() or None if value is not None else None

    origen = texto("Codigo_Entidad_Registral_Origen") or ""
    try:
        tipo = TipoMensaje(texto("Tipo_Mensaje") or "")
    except ValueError:
        raise FicheroInvalido([(None, "Tipo_Mensaje desconocido: 01, 02 o 03")]) from None
    fecha_texto = texto("Fecha_Hora_Entrada_Destino")
    try:
        fecha = leer_fecha_hora(fecha_texto, zona_de_entidad(origen)) if fecha_texto else None
    except ValueError as exc:
        raise FicheroInvalido([(None, str(exc))]) from None
    return Mensaje(
        codigo_entidad_origen=origen,
        codigo_entidad_destino=texto("Codigo_Entidad_Registral_Destino") or "",
        identificador_intercambio=texto("Identificador_Intercambio") or "",
        tipo=tipo,
        descripcion=texto("Descripcion_Mensaje"),
        numero_registro_destino=texto("Numero_Registro_Entrada_Destino"),
        fecha_registro_destino=fecha,
        indicador_prueba=texto("Indicador_Prueba") == "1",
        identificadores_fichero=tuple(
            (n.text or "").strip() for n in root.iterfind("Identificador_Fichero")
        ),
        codigo_error=texto("Codigo_Error"),
    )


def fichero_de_rechazo(original: bytes, motivo: str) -> bytes:
    """The received file, sent back to its origin as rejected (Tipo_Anotacion 04).

    Everything the origin sent goes back as it came; the reason goes in
    Observaciones_Apunte, which SICRES limits to 50 characters (a longer one is cut
    there with an ellipsis; the registro keeps it whole and announces it on the bus).
    """
    root = etree.fromstring(original, _parser())
    control = root.find("De_Internos_Control")
    if control is None:
        raise FicheroInvalido([(None, "el fichero no tiene De_Internos_Control")])
    anotacion = control.find("Tipo_Anotacion")
    if anotacion is None:
        raise FicheroInvalido([(None, "el fichero no tiene Tipo_Anotacion")])
    anotacion.text = ANOTACION_RECHAZO
    descripcion = control.find("Descripcion_Tipo_Anotacion")
    if descripcion is None:
        descripcion = etree.Element("Descripcion_Tipo_Anotacion")
        anotacion.addnext(descripcion)
    descripcion.text = "Rechazo"
    if len(motivo) > _OBSERVACIONES_APUNTE:
        motivo = motivo[: _OBSERVACIONES_APUNTE - 1] + "…"
    observaciones = control.find("Observaciones_Apunte")
    if observaciones is None:
        # Its place in the schema's sequence: right after Documentacion_Fisica.
        observaciones = etree.Element("Observaciones_Apunte")
        documentacion = control.find("Documentacion_Fisica")
        assert documentacion is not None  # required by the schema the file passed
        documentacion.addnext(observaciones)
    observaciones.text = motivo
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data
