"""SICRES 3.0 exchange files (Fichero_Intercambio_SICRES_3): build, validate and read them.

Pure: no I/O but reading the bundled XSD. The registro uses it to hand an asiento to
another administration's register and to take in one that another register sent
(the exchange the Sistema de Interconexión de Registros carries). The schema is the
one shipped with the reference implementation, copied unchanged into ``sicres3/``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from services.common.timezones import tenant_timezone
from services.registro.anexos.domain import AnexoSicres, hash_sicres
from services.registro.anexos.schemas import AnexoRead
from services.registro.asientos.schemas import AsientoCreate, AsientoRead, Interesado, Persona
from services.registro.domain import TipoAsiento, TipoIdentificador

__all__ = [
    "ANOTACION_ENVIO",
    "FicheroIntercambio",
    "FicheroInvalido",
    "HashNoCoincide",
    "InteresadoSicres",
    "NoRepresentable",
    "SCHEMA_FILE",
    "asiento_create",
    "build_fichero",
    "comprobar_anexos",
    "fecha_hora",
    "identificador_intercambio",
    "leer_fecha_hora",
    "parse_fichero",
    "validate",
    "zona_de_entidad",
]

SCHEMA_FILE = Path(__file__).parent / "sicres3" / "ficheroIntercambio.xsd"
ROOT = "Fichero_Intercambio_SICRES_3"
# Tipo_Anotacion: 01 pendiente, 02 envío, 03 reenvío, 04 rechazo.
ANOTACION_ENVIO = "02"
# Documentacion_Fisica 3: no physical documentation goes with the asiento (ours is all electronic).
SIN_DOCUMENTACION_FISICA = "3"
_ENCODINGS = {"UTF-8", "ISO-8859-1"}
_FECHA = "%Y%m%d%H%M%S"
_FECHA_RE = re.compile(r"^\d{14}$")

# Tipo_Documento_Identificacion of SICRES 3.0: N NIF, C CIF, P pasaporte, E NIE,
# X other identification of a person, O code of origin (an administration).
_TIPO_SICRES = {
    TipoIdentificador.NIF: "N",
    TipoIdentificador.CIF: "C",
    TipoIdentificador.PASAPORTE: "P",
    TipoIdentificador.NIE: "E",
}
_TIPO_REGISTRO = {"0": TipoAsiento.ENTRADA, "1": TipoAsiento.SALIDA}
# How a SICRES Hash is read: the example files carry base64 of a hex digest, others
# base64 of the raw digest; the digest's length says the algorithm.
_ALGORITMOS = {16: "md5", 20: "sha1", 32: "sha256", 64: "sha512"}


class FicheroInvalido(ValueError):
    """The file is not well-formed XML, not in an accepted encoding, or not valid SICRES 3.0."""

    def __init__(self, errors: list[tuple[int | None, str]]) -> None:
        super().__init__("; ".join(f"línea {line}: {msg}" for line, msg in errors))
        self.errors = errors


class HashNoCoincide(ValueError):
    """An anexo's content does not match its Hash (or the Hash cannot be read)."""

    def __init__(self, anexo: str, detail: str) -> None:
        super().__init__(f"anexo {anexo}: {detail}")
        self.anexo = anexo


class NoRepresentable(ValueError):
    """Data that SICRES 3.0 cannot carry (too long for its field, or no such concept)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {msg}" for name, msg in errors))
        self.errors = errors


@dataclass(frozen=True)
class InteresadoSicres:
    """A De_Interesado block as sent (the representante stays in ``extra``)."""

    tipo_documento: str | None
    documento: str | None
    razon_social: str | None
    nombre: str | None
    apellido1: str | None
    apellido2: str | None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FicheroIntercambio:
    """What a Fichero_Intercambio_SICRES_3 says, in the registro's terms."""

    identificador_intercambio: str
    codigo_entidad_origen: str
    decodificacion_entidad_origen: str | None
    numero_registro_origen: str
    fecha_registro_origen: datetime
    codigo_unidad_origen: str | None
    codigo_entidad_destino: str
    decodificacion_entidad_destino: str | None
    codigo_unidad_destino: str | None
    interesados: list[InteresadoSicres]
    resumen: str
    codigo_asunto: str | None
    referencia_externa: str | None
    numero_expediente: str | None
    anexos: list[AnexoSicres]
    tipo_registro: TipoAsiento
    tipo_anotacion: str
    documentacion_fisica: str
    indicador_prueba: bool
    codigo_entidad_inicio: str
    nombre_usuario: str | None
    contacto_usuario: str | None
    tipo_transporte: str | None
    numero_transporte: str | None
    observaciones_apunte: str | None
    expone: str | None
    solicita: str | None

    def resumen_json(self) -> dict[str, Any]:
        """The file's registry data (no anexo bytes) as JSON, to keep beside the raw XML."""
        return {
            "identificador_intercambio": self.identificador_intercambio,
            "origen": {
                "codigo_entidad_registral": self.codigo_entidad_origen,
                "decodificacion": self.decodificacion_entidad_origen,
                "numero_registro": self.numero_registro_origen,
                "fecha_registro": self.fecha_registro_origen.isoformat(),
                "codigo_unidad_tramitacion": self.codigo_unidad_origen,
            },
            "destino": {
                "codigo_entidad_registral": self.codigo_entidad_destino,
                "decodificacion": self.decodificacion_entidad_destino,
                "codigo_unidad_tramitacion": self.codigo_unidad_destino,
            },
            "interesados": [
                {
                    "tipo_documento": i.tipo_documento,
                    "documento": i.documento,
                    "razon_social": i.razon_social,
                    "nombre": i.nombre,
                    "apellido1": i.apellido1,
                    "apellido2": i.apellido2,
                    **i.extra,
                }
                for i in self.interesados
            ],
            "asunto": {
                "resumen": self.resumen,
                "codigo_asunto_segun_destino": self.codigo_asunto,
                "referencia_externa": self.referencia_externa,
                "numero_expediente": self.numero_expediente,
            },
            "tipo_registro": self.tipo_registro.value,
            "tipo_anotacion": self.tipo_anotacion,
            "documentacion_fisica": self.documentacion_fisica,
            "indicador_prueba": self.indicador_prueba,
            "codigo_entidad_registral_inicio": self.codigo_entidad_inicio,
            "nombre_usuario": self.nombre_usuario,
            "contacto_usuario": self.contacto_usuario,
            "transporte": {"tipo": self.tipo_transporte, "numero": self.numero_transporte},
            "observaciones_apunte": self.observaciones_apunte,
            "expone": self.expone,
            "solicita": self.solicita,
        }


@functools.cache
def _schema() -> etree.XMLSchema:
    """The SICRES 3.0 schema, compiled once per process."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE)))


def identificador_intercambio(codigo_entidad: str, anio: int, contador: int) -> str:
    """The exchange id the standard defines: origin entity code, ``_``, two-digit year,
    ``_``, an eight-digit counter of the origin (e.g. ``O00002741_13_00000012``).

    At most 21 + 1 + 2 + 1 + 8 = 33 characters, the schema's limit.
    """
    if not codigo_entidad or len(codigo_entidad) > 21 or "_" in codigo_entidad:
        raise ValueError("el código de entidad registral tiene de 1 a 21 caracteres, sin '_'")
    if not 1 <= contador <= 99_999_999:
        raise ValueError("el contador de intercambios va de 1 a 99999999")
    return f"{codigo_entidad}_{anio % 100:02d}_{contador:08d}"


def zona_de_entidad(codigo_entidad: str) -> ZoneInfo:
    """The time zone of a SICRES local time: Canarias for a local entity (``L01`` + INE)
    of Las Palmas or Santa Cruz de Tenerife, else the peninsula's."""
    if codigo_entidad.startswith("L01") and len(codigo_entidad) == 9:
        return tenant_timezone(codigo_entidad[3:8])
    return ZoneInfo("Europe/Madrid")


def fecha_hora(instante: datetime, zona: ZoneInfo) -> str:
    """A SICRES Fecha_Hora (local ``AAAAMMDDhhmmss``, no zone, to the second)."""
    return instante.astimezone(zona).strftime(_FECHA)


def leer_fecha_hora(valor: str, zona: ZoneInfo) -> datetime:
    """A SICRES Fecha_Hora read as local time of ``zona``."""
    if not _FECHA_RE.match(valor):
        raise ValueError(f"fecha y hora SICRES no válida: {valor!r} (AAAAMMDDhhmmss)")
    return datetime.strptime(valor, _FECHA).replace(tzinfo=zona)


# --- building ------------------------------------------------------------------------------


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, name)
    if text is not None:
        child.text = text
    return child


def _cabe(errors: list[tuple[str, str]], name: str, value: str | None, limit: int) -> str | None:
    """``value`` if it fits SICRES's ``limit``; otherwise the reason is collected."""
    if value is not None and len(value) > limit:
        errors.append((name, f"tiene {len(value)} caracteres y SICRES 3.0 admite {limit}"))
    return value


def build_fichero(
    asiento: AsientoRead,
    *,
    codigo_entidad: str,
    nombre_entidad: str,
    identificador: str,
    zona: ZoneInfo | None = None,
    timestamp: bytes | None = None,
    anexos: Sequence[tuple[AnexoRead, bytes | None]] = (),
) -> bytes:
    """The asiento as a Fichero_Intercambio_SICRES_3 (UTF-8), sent by ``codigo_entidad``.

    ``timestamp`` is the RFC 3161 token of the asiento's register date-time
    (Timestamp_Entrada); ``anexos`` pairs each anexo with its bytes. Raises
    NoRepresentable naming every field SICRES cannot carry, rather than truncating
    register data.
    """
    errors: list[tuple[str, str]] = []
    root = etree.Element(ROOT)
    origen = _sub(root, "De_Origen_o_Remitente")
    # The register that sends is the oficina where the asiento was made, if recorded.
    codigo_origen = asiento.oficina or codigo_entidad
    # A SICRES time has no zone: the receiver reads it in the zone the origin code
    # implies (zona_de_entidad), so it is written in that same zone.
    zona = zona or zona_de_entidad(codigo_origen)
    _sub(origen, "Codigo_Entidad_Registral_Origen", codigo_origen)
    # Decodificaciones are labels for people: shortening one loses no register data.
    _sub(origen, "Decodificacion_Entidad_Registral_Origen", nombre_entidad[:80])
    _sub(origen, "Numero_Registro_Entrada", _cabe(errors, "numero", asiento.numero, 20))
    _sub(origen, "Fecha_Hora_Entrada", fecha_hora(asiento.fecha_registro, zona))
    if timestamp is not None:
        _sub(origen, "Timestamp_Entrada", base64.b64encode(timestamp).decode("ascii"))
    if asiento.origen is not None and asiento.origen.unidad_tramitacion is not None:
        _sub(origen, "Codigo_Unidad_Tramitacion_Origen", asiento.origen.unidad_tramitacion)

    destino = _sub(root, "De_Destino")
    _sub(
        destino,
        "Codigo_Entidad_Registral_Destino",
        asiento.entidad_registral_destino or asiento.unidad_destino,
    )
    _sub(destino, "Codigo_Unidad_Tramitacion_Destino", asiento.unidad_destino)

    for n, interesado in enumerate(asiento.interesados):
        _interesado(root, interesado, errors, f"interesados[{n}]")

    asunto = _sub(root, "De_Asunto")
    _sub(asunto, "Resumen", _cabe(errors, "resumen", asiento.resumen, 240))
    codigo = asiento.codigo_asunto or asiento.procedimiento
    if codigo is not None:
        _sub(asunto, "Codigo_Asunto_Segun_Destino", _cabe(errors, "procedimiento", codigo, 16))
    if asiento.referencia_externa is not None:
        _sub(asunto, "Referencia_Externa", asiento.referencia_externa)
    if asiento.numero_expediente is not None:
        _sub(asunto, "Numero_Expediente", asiento.numero_expediente)

    for anexo, contenido in anexos:
        _anexo(root, anexo, contenido)

    control = _sub(root, "De_Internos_Control")
    if asiento.transporte is not None:
        _sub(control, "Tipo_Transporte_Entrada", asiento.transporte.tipo.value)
        if asiento.transporte.numero is not None:
            _sub(control, "Numero_Transporte_Entrada", asiento.transporte.numero)
    if len(asiento.registrado_por) <= 80:
        _sub(control, "Nombre_Usuario", asiento.registrado_por)
    if asiento.contacto_usuario is not None:
        _sub(control, "Contacto_Usuario", asiento.contacto_usuario)
    _sub(control, "Identificador_Intercambio", identificador)
    _sub(control, "Tipo_Anotacion", ANOTACION_ENVIO)
    _sub(control, "Descripcion_Tipo_Anotacion", "Envío")
    _sub(control, "Tipo_Registro", "0" if asiento.tipo is TipoAsiento.ENTRADA else "1")
    _sub(control, "Documentacion_Fisica", asiento.documentacion_fisica.value)
    if asiento.observaciones is not None:
        _sub(control, "Observaciones_Apunte", asiento.observaciones)
    _sub(control, "Indicador_Prueba", "0")
    _sub(control, "Codigo_Entidad_Registral_Inicio", asiento.oficina or codigo_entidad)
    _sub(control, "Decodificacion_Entidad_Registral_Inicio", nombre_entidad[:80])

    formulario = _sub(root, "De_Formulario_Generico")
    _sub(formulario, "Expone", asiento.expone or "")
    _sub(formulario, "Solicita", asiento.solicita or "")
    if errors:
        raise NoRepresentable(errors)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data


# Our field of a person, and the SICRES element for it without its _Interesado /
# _Representante suffix; the schema's order is identity of both, then contact of both.
_IDENTIDAD = (
    ("tipo_identificador", "Tipo_Documento_Identificacion"),
    ("identificador", "Documento_Identificacion"),
    ("razon_social", "Razon_Social"),
    ("nombre", "Nombre"),
    ("apellido1", "Primer_Apellido"),
    ("apellido2", "Segundo_Apellido"),
)
_CONTACTO = (
    ("pais", "Pais"),
    ("provincia", "Provincia"),
    ("municipio", "Municipio"),
    ("direccion", "Direccion"),
    ("codigo_postal", "Codigo_Postal"),
    ("email", "Correo_Electronico"),
    ("telefono", "Telefono_Contacto"),
    ("deh", "Direccion_Electronica_Habilitada"),
    ("canal_preferente", "Canal_Preferente_Comunicacion"),
)


def _persona(
    block: etree._Element, persona: Persona | None, campos: Any, sufijo: str, errors: Any, p: str
) -> None:
    if persona is None:
        return
    for campo, elemento in campos:
        valor = getattr(persona, campo)
        if valor is None:
            continue
        if campo == "tipo_identificador":
            valor = _TIPO_SICRES[valor]
        elif campo == "identificador":
            valor = _cabe(errors, f"{p}.identificador", valor, 17)
        _sub(block, f"{elemento}_{sufijo}", str(valor))


def _interesado(
    root: etree._Element, interesado: Interesado, errors: list[tuple[str, str]], prefix: str
) -> None:
    block = _sub(root, "De_Interesado")
    representante = interesado.representante
    _persona(block, interesado, _IDENTIDAD, "Interesado", errors, prefix)
    _persona(block, representante, _IDENTIDAD, "Representante", errors, f"{prefix}.representante")
    _persona(block, interesado, _CONTACTO, "Interesado", errors, prefix)
    _persona(block, representante, _CONTACTO, "Representante", errors, f"{prefix}.representante")
    if interesado.observaciones is not None:
        _sub(block, "Observaciones", interesado.observaciones)


def _anexo(root: etree._Element, anexo: AnexoRead, contenido: bytes | None) -> None:
    """A De_Anexo block of an anexo kept as the registro records it (see the anexos package)."""
    block = _sub(root, "De_Anexo")
    _sub(block, "Nombre_Fichero_Anexado", anexo.nombre)
    _sub(block, "Identificador_Fichero", anexo.identificador_fichero)
    if anexo.validez is not None:
        _sub(block, "Validez_Documento", str(anexo.validez.value))
    _sub(block, "Tipo_Documento", str(anexo.tipo_documento.value))
    if anexo.firma is not None:
        _sub(block, "Firma_Documento", anexo.firma)
    if anexo.sello_tiempo is not None:
        _sub(block, "TimeStamp", anexo.sello_tiempo)
    _sub(block, "Hash", hash_sicres(anexo))
    if anexo.tipo_mime is not None and len(anexo.tipo_mime) <= 20:
        _sub(block, "Tipo_MIME", anexo.tipo_mime)
    if contenido is not None:
        _sub(block, "Anexo", base64.b64encode(contenido).decode("ascii"))
    if anexo.identificador_documento_firmado is not None:
        _sub(block, "Identificador_Documento_Firmado", anexo.identificador_documento_firmado)
    if anexo.observaciones is not None:
        _sub(block, "Observaciones", anexo.observaciones)


# --- reading -------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    """No DTDs, entities or network: an exchange file comes from outside."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_pis=True
    )


def validate(data: bytes) -> etree._ElementTree:
    """Parses ``data`` and validates it against the SICRES 3.0 schema.

    Raises FicheroInvalido with every error and its line. Only UTF-8 and ISO-8859-1
    are accepted, as the XML prolog declares them (no prolog means UTF-8).
    """
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as exc:
        errors = [(e.line, e.message) for e in exc.error_log] or [(exc.lineno, str(exc.msg))]
        raise FicheroInvalido(errors) from None
    encoding = (tree.docinfo.encoding or "UTF-8").upper().replace("LATIN1", "ISO-8859-1")
    if encoding not in _ENCODINGS:
        raise FicheroInvalido([(1, f"codificación {encoding} no admitida: UTF-8 o ISO-8859-1")])
    if tree.docinfo.doctype:
        raise FicheroInvalido([(1, "un fichero de intercambio no lleva declaración DOCTYPE")])
    schema = _schema()
    if not schema.validate(tree):
        raise FicheroInvalido([(e.line, e.message) for e in schema.error_log])
    return tree


def _texto(node: etree._Element | None, name: str) -> str | None:
    """The stripped text of child ``name``; None when absent or empty (SICRES sends empty
    CDATA for what it does not know)."""
    if node is None:
        return None
    child = node.find(name)
    if child is None or child.text is None:
        return None
    value: str = child.text.strip()
    return value or None


def _requerido(node: etree._Element, name: str) -> str:
    value = _texto(node, name)
    if value is None:
        line = node.sourceline
        raise FicheroInvalido([(line, f"{name} no puede estar vacío")])
    return value


def _base64(node: etree._Element, name: str, anexo: str) -> bytes | None:
    value = _texto(node, name)
    if value is None:
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except binascii.Error:
        raise FicheroInvalido([(node.sourceline, f"{name} de {anexo}: base64 no válido")]) from None


def parse_fichero(data: bytes) -> FicheroIntercambio:
    """Validates and reads an exchange file; raises FicheroInvalido on any problem."""
    root = validate(data).getroot()
    origen = root.find("De_Origen_o_Remitente")
    destino = root.find("De_Destino")
    asunto = root.find("De_Asunto")
    control = root.find("De_Internos_Control")
    formulario = root.find("De_Formulario_Generico")
    assert origen is not None and destino is not None and asunto is not None
    assert control is not None
    codigo_origen = _requerido(origen, "Codigo_Entidad_Registral_Origen")
    fecha_texto = _requerido(origen, "Fecha_Hora_Entrada")
    try:
        fecha = leer_fecha_hora(fecha_texto, zona_de_entidad(codigo_origen))
    except ValueError as exc:
        raise FicheroInvalido([(origen.sourceline, str(exc))]) from None
    return FicheroIntercambio(
        identificador_intercambio=_requerido(control, "Identificador_Intercambio"),
        codigo_entidad_origen=codigo_origen,
        decodificacion_entidad_origen=_texto(origen, "Decodificacion_Entidad_Registral_Origen"),
        numero_registro_origen=_requerido(origen, "Numero_Registro_Entrada"),
        fecha_registro_origen=fecha,
        codigo_unidad_origen=_texto(origen, "Codigo_Unidad_Tramitacion_Origen"),
        codigo_entidad_destino=_requerido(destino, "Codigo_Entidad_Registral_Destino"),
        decodificacion_entidad_destino=_texto(destino, "Decodificacion_Entidad_Registral_Destino"),
        codigo_unidad_destino=_texto(destino, "Codigo_Unidad_Tramitacion_Destino"),
        interesados=[_leer_interesado(n) for n in root.iterfind("De_Interesado")],
        resumen=_requerido(asunto, "Resumen"),
        codigo_asunto=_texto(asunto, "Codigo_Asunto_Segun_Destino"),
        referencia_externa=_texto(asunto, "Referencia_Externa"),
        numero_expediente=_texto(asunto, "Numero_Expediente"),
        anexos=[_leer_anexo(n) for n in root.iterfind("De_Anexo")],
        tipo_registro=_TIPO_REGISTRO[_requerido(control, "Tipo_Registro")],
        tipo_anotacion=_requerido(control, "Tipo_Anotacion"),
        documentacion_fisica=_requerido(control, "Documentacion_Fisica"),
        indicador_prueba=_requerido(control, "Indicador_Prueba") == "1",
        codigo_entidad_inicio=_requerido(control, "Codigo_Entidad_Registral_Inicio"),
        nombre_usuario=_texto(control, "Nombre_Usuario"),
        contacto_usuario=_texto(control, "Contacto_Usuario"),
        tipo_transporte=_texto(control, "Tipo_Transporte_Entrada"),
        numero_transporte=_texto(control, "Numero_Transporte_Entrada"),
        observaciones_apunte=_texto(control, "Observaciones_Apunte"),
        expone=_texto(formulario, "Expone"),
        solicita=_texto(formulario, "Solicita"),
    )


_PROPIOS = {
    "Tipo_Documento_Identificacion_Interesado",
    "Documento_Identificacion_Interesado",
    "Razon_Social_Interesado",
    "Nombre_Interesado",
    "Primer_Apellido_Interesado",
    "Segundo_Apellido_Interesado",
}


def _leer_interesado(node: etree._Element) -> InteresadoSicres:
    extra = {
        str(child.tag): child.text.strip()
        for child in node
        if isinstance(child.tag, str) and child.tag not in _PROPIOS and (child.text or "").strip()
    }
    return InteresadoSicres(
        tipo_documento=_texto(node, "Tipo_Documento_Identificacion_Interesado"),
        documento=_texto(node, "Documento_Identificacion_Interesado"),
        razon_social=_texto(node, "Razon_Social_Interesado"),
        nombre=_texto(node, "Nombre_Interesado"),
        apellido1=_texto(node, "Primer_Apellido_Interesado"),
        apellido2=_texto(node, "Segundo_Apellido_Interesado"),
        extra=extra,
    )


def _leer_anexo(node: etree._Element) -> AnexoSicres:
    identificador = _requerido(node, "Identificador_Fichero")
    contenido = _base64(node, "Anexo", identificador)
    return AnexoSicres(
        nombre_fichero=_requerido(node, "Nombre_Fichero_Anexado"),
        identificador_fichero=identificador,
        tipo_documento=_requerido(node, "Tipo_Documento"),
        hash=_requerido(node, "Hash"),
        tipo_mime=_texto(node, "Tipo_MIME"),
        contenido=contenido or None,
        validez=_texto(node, "Validez_Documento"),
        identificador_documento_firmado=_texto(node, "Identificador_Documento_Firmado"),
        observaciones=_texto(node, "Observaciones"),
        firma=_base64(node, "Firma_Documento", identificador) or None,
        sello_tiempo=_base64(node, "TimeStamp", identificador) or None,
    )


# --- anexos --------------------------------------------------------------------------------


def _digest_esperado(hash_b64: str) -> tuple[str, bytes, Callable[[bytes], bytes]] | None:
    """The algorithm, the expected digest and how to compute one, from a SICRES Hash."""
    try:
        raw = base64.b64decode("".join(hash_b64.split()), validate=True)
    except binascii.Error:
        return None
    hexa = raw.decode("ascii", "replace").strip()
    if re.fullmatch(r"[0-9a-fA-F]+", hexa) and len(hexa) // 2 in _ALGORITMOS and len(hexa) % 2 == 0:
        algoritmo = _ALGORITMOS[len(hexa) // 2]
        return (
            algoritmo,
            hexa.lower().encode(),
            lambda b: hashlib.new(algoritmo, b).hexdigest().encode(),
        )
    if len(raw) in _ALGORITMOS:
        algoritmo = _ALGORITMOS[len(raw)]
        return algoritmo, raw, lambda b: hashlib.new(algoritmo, b).digest()
    return None


def comprobar_anexos(fichero: FicheroIntercambio) -> list[dict[str, Any]]:
    """Checks each anexo that came with its content against its Hash.

    Anexos without content are kept and flagged (``recibido_sin_contenido``): SIR may
    deliver the bytes separately, and the reference test files carry none. Raises
    HashNoCoincide for the first anexo whose content does not match.
    """
    resumen: list[dict[str, Any]] = []
    for anexo in fichero.anexos:
        entrada: dict[str, Any] = {
            "identificador_fichero": anexo.identificador_fichero,
            "nombre_fichero": anexo.nombre_fichero,
            "tipo_documento": anexo.tipo_documento,
            "tipo_mime": anexo.tipo_mime,
            "validez": anexo.validez,
            "identificador_documento_firmado": anexo.identificador_documento_firmado,
            "hash": anexo.hash,
            "recibido_sin_contenido": anexo.contenido is None,
            "tamano": len(anexo.contenido) if anexo.contenido is not None else None,
            "hash_algoritmo": None,
            "hash_comprobado": False,
        }
        if anexo.contenido is not None:
            esperado = _digest_esperado(anexo.hash)
            if esperado is None:
                raise HashNoCoincide(
                    anexo.identificador_fichero, "el Hash no es un resumen legible"
                )
            algoritmo, digest, calcular = esperado
            if calcular(anexo.contenido) != digest:
                raise HashNoCoincide(
                    anexo.identificador_fichero,
                    f"el contenido no coincide con su Hash ({algoritmo})",
                )
            entrada.update(hash_algoritmo=algoritmo, hash_comprobado=True)
        resumen.append(entrada)
    return resumen


# --- into an asiento -----------------------------------------------------------------------

_TIPO_PROPIO = {v: k for k, v in _TIPO_SICRES.items()}


def _persona_de(campos: dict[str, str], sufijo: str) -> dict[str, Any] | None:
    """One person of a De_Interesado block as our fields (None if the block has none)."""
    persona: dict[str, Any] = {}
    for campo, elemento in (*_IDENTIDAD, *_CONTACTO):
        valor = campos.get(f"{elemento}_{sufijo}")
        if valor is not None:
            persona[campo] = valor
    if not persona:
        return None
    tipo = _TIPO_PROPIO.get(persona.get("tipo_identificador", ""))
    persona["tipo_identificador"] = tipo.value if tipo is not None else None
    return persona


def _interesado_de(i: InteresadoSicres, n: int, errors: list[tuple[str, str]]) -> dict[str, Any]:
    campos = {
        **i.extra,
        **{
            f"{elemento}_Interesado": valor
            for elemento, valor in (
                ("Tipo_Documento_Identificacion", i.tipo_documento),
                ("Documento_Identificacion", i.documento),
                ("Razon_Social", i.razon_social),
                ("Nombre", i.nombre),
                ("Primer_Apellido", i.apellido1),
                ("Segundo_Apellido", i.apellido2),
            )
            if valor is not None
        },
    }
    interesado = _persona_de(campos, "Interesado") or {}
    if interesado.get("tipo_identificador") is None or interesado.get("identificador") is None:
        errors.append(
            (f"interesados[{n}]", "sin NIF, NIE, CIF o pasaporte: el registro no lo admite")
        )
    representante = _persona_de(campos, "Representante")
    if representante is not None:
        interesado["representante"] = representante
    if "Observaciones" in campos:
        interesado["observaciones"] = campos["Observaciones"]
    return interesado


def asiento_create(fichero: FicheroIntercambio) -> AsientoCreate:
    """The new ENTRADA an accepted exchange becomes in this register.

    Every field the file carries is kept. Codigo_Asunto_Segun_Destino is by definition
    the destination's own code, so it is read as both the asunto code and the
    procedimiento. Raises NoRepresentable when the file holds what the registro cannot
    record (an interesado identified otherwise than by NIF, NIE, CIF or passport);
    pydantic's own checks (check letters, lengths) apply too.
    """
    errors: list[tuple[str, str]] = []
    interesados = [_interesado_de(i, n, errors) for n, i in enumerate(fichero.interesados)]
    if errors:
        raise NoRepresentable(errors)
    transporte = None
    if fichero.tipo_transporte is not None:
        transporte = {"tipo": fichero.tipo_transporte, "numero": fichero.numero_transporte}
    destino_registral = fichero.codigo_entidad_destino
    unidad_destino = fichero.codigo_unidad_destino or destino_registral
    return AsientoCreate.model_validate(
        {
            "tipo": TipoAsiento.ENTRADA.value,
            "resumen": fichero.resumen,
            "unidad_destino": unidad_destino,
            "entidad_registral_destino": (
                destino_registral if destino_registral != unidad_destino else None
            ),
            "origen": {
                "entidad_registral": fichero.codigo_entidad_origen,
                "unidad_tramitacion": fichero.codigo_unidad_origen,
                "numero_registro": fichero.numero_registro_origen,
                "fecha_registro": fichero.fecha_registro_origen,
            },
            "interesados": interesados,
            "procedimiento": fichero.codigo_asunto,
            "codigo_asunto": fichero.codigo_asunto,
            "referencia_externa": fichero.referencia_externa,
            "numero_expediente": fichero.numero_expediente,
            "transporte": transporte,
            "contacto_usuario": fichero.contacto_usuario,
            "documentacion_fisica": fichero.documentacion_fisica,
            "observaciones": fichero.observaciones_apunte,
            "expone": fichero.expone,
            "solicita": fichero.solicita,
        }
    )
