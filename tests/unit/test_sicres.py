"""SICRES 3.0 exchange files: what we build validates, the reference example reads, the
exchange id has the standard's shape, both accepted encodings read alike, hashes check."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from pydantic import ValidationError

from services.registro.asientos.schemas import AsientoRead
from services.registro.domain import TipoAsiento, TipoIdentificador
from services.registro.intercambios import sicres
from tests.support import factories

EJEMPLO = Path(__file__).parents[1] / "fixtures" / "sicres3" / "ejemplo-ficheroIntercambio.xml"
MADRID = ZoneInfo("Europe/Madrid")


def asiento(**overrides: object) -> AsientoRead:
    data: dict[str, object] = {
        "id": "0195a3c4-1f0a-7d2e-8c55-6b3f1e9a7d20",
        "numero": "S/2026/000007",
        "tipo": "salida",
        "anio": 2026,
        "secuencia": 7,
        "fecha_registro": datetime(2026, 3, 2, 9, 41, 3, 518000, tzinfo=UTC),
        "resumen": "Remisión de expediente de licencia, año 2026",
        "unidad_destino": "A04003003",
        "procedimiento": "generico",
        "interesados": [
            factories.interesado(nombre="Lucía", apellido1="Núñez", apellido2="Peña"),
            {"tipo_identificador": "CIF", "identificador": "B12345674", "nombre": "Obras Año SL"},
            factories.interesado(tipo_identificador="NIE", identificador=factories.nie()),
            {"tipo_identificador": "PASAPORTE", "identificador": "XDA123456", "nombre": "John"},
        ],
        "registrado_por": "ana",
    }
    data.update(overrides)
    return AsientoRead.model_validate(data)


def build(a: AsientoRead, identificador: str = "L01030149_26_00000001") -> bytes:
    return sicres.build_fichero(
        a,
        codigo_entidad="L01030149",
        nombre_entidad="Ayuntamiento de Alicante",
        identificador=identificador,
        zona=MADRID,
    )


def test_built_file_validates_and_carries_the_asiento() -> None:
    a = asiento()
    data = build(a)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    sicres.validate(data)  # raises if the XSD refuses it
    root = etree.fromstring(data)
    assert root.findtext("De_Origen_o_Remitente/Codigo_Entidad_Registral_Origen") == "L01030149"
    assert root.findtext("De_Origen_o_Remitente/Numero_Registro_Entrada") == "S/2026/000007"
    # 09:41:03 UTC is 10:41:03 in Alicante in March; SICRES keeps local time to the second.
    assert root.findtext("De_Origen_o_Remitente/Fecha_Hora_Entrada") == "20260302104103"
    assert root.findtext("De_Destino/Codigo_Entidad_Registral_Destino") == "A04003003"
    assert root.findtext("De_Internos_Control/Tipo_Registro") == "1"
    assert root.findtext("De_Internos_Control/Tipo_Anotacion") == "02"
    assert root.findtext("De_Internos_Control/Documentacion_Fisica") == "3"
    assert root.findtext("De_Internos_Control/Indicador_Prueba") == "0"
    tipos = [
        i.findtext("Tipo_Documento_Identificacion_Interesado") for i in root.iter("De_Interesado")
    ]
    assert tipos == ["N", "C", "E", "P"]
    assert root.find("De_Anexo") is None

    leido = sicres.parse_fichero(data)
    assert leido.tipo_registro is TipoAsiento.SALIDA
    assert leido.fecha_registro_origen == a.fecha_registro.replace(microsecond=0)
    creado = sicres.asiento_create(leido)
    assert creado.tipo is TipoAsiento.ENTRADA
    assert (creado.resumen, creado.unidad_destino, creado.procedimiento) == (
        a.resumen,
        a.unidad_destino,
        a.procedimiento,
    )
    assert creado.interesados == a.interesados


def test_an_entrada_is_tipo_registro_0() -> None:
    root = etree.fromstring(build(asiento(tipo="entrada", numero="E/2026/000007")))
    assert root.findtext("De_Internos_Control/Tipo_Registro") == "0"


def test_what_sicres_cannot_carry_is_refused_not_truncated() -> None:
    # Our own fields have SICRES's lengths, so an over-long name never gets in at all...
    with pytest.raises(ValidationError, match="at most 30 characters"):
        asiento(interesados=[factories.interesado(nombre="Nombre de más de treinta caracteres")])
    # ...and what only the export limits (the procedimiento as Codigo_Asunto) is refused.
    largo = asiento(procedimiento="procedimiento-de-nombre-largo")
    with pytest.raises(sicres.NoRepresentable) as caught:
        build(largo)
    assert [name for name, _ in caught.value.errors] == ["procedimiento"]


def test_every_field_survives_export_and_import() -> None:
    a = asiento(
        tipo="entrada",
        numero="E/2026/000007",
        interesados=[factories.interesado_completo()],
        **{**factories.CAMPOS_SICRES, "procedimiento": None},
    )
    data = build(a)
    sicres.validate(data)
    root = etree.fromstring(data)
    assert root.findtext("De_Origen_o_Remitente/Codigo_Entidad_Registral_Origen") == "O00002741"
    assert root.findtext("De_Interesado/Razon_Social_Representante") == "Gestoría Levante SL"
    assert root.findtext("De_Interesado/Canal_Preferente_Comunicacion_Interesado") == "02"
    assert root.findtext("De_Internos_Control/Numero_Transporte_Entrada") == "CD123456789ES"

    creado = sicres.asiento_create(sicres.parse_fichero(data))
    for campo in factories.CAMPOS_QUE_VIAJAN:
        assert getattr(creado, campo) == getattr(a, campo), campo
    # The receiving register records where it came from: the sender's office, number, date.
    assert creado.origen is not None
    assert creado.origen.entidad_registral == "O00002741"
    assert creado.origen.unidad_tramitacion == "E04975702"
    assert creado.origen.numero_registro == "E/2026/000007"
    assert creado.origen.fecha_registro == a.fecha_registro.replace(microsecond=0)


def test_a_postal_channel_needs_an_address() -> None:
    interesado = {**factories.interesado(), "canal_preferente": "01"}
    with pytest.raises(ValidationError, match="direccion y codigo_postal"):
        asiento(interesados=[interesado])
    with pytest.raises(ValidationError, match="necesita deh"):
        asiento(interesados=[{**interesado, "canal_preferente": "02"}])


def test_the_reference_example_reads() -> None:
    fichero = sicres.parse_fichero(EJEMPLO.read_bytes())
    assert fichero.identificador_intercambio == "O00002741_13_00000012"
    assert fichero.codigo_entidad_origen == "O00002741"
    assert fichero.numero_registro_origen == "O00002741_13_0000012"
    assert fichero.fecha_registro_origen == datetime(2013, 1, 9, 12, 25, 37, tzinfo=MADRID)
    assert fichero.codigo_unidad_destino == "L02000042"
    assert fichero.resumen == "SIR IN PR 015"
    assert fichero.tipo_registro is TipoAsiento.ENTRADA
    assert len(fichero.anexos) == 11
    assert all(a.contenido is None for a in fichero.anexos)
    [interesado] = fichero.interesados
    assert (interesado.tipo_documento, interesado.documento) == ("N", "11111111H")
    assert interesado.extra["Documento_Identificacion_Representante"] == "09346781H"
    anexos = sicres.comprobar_anexos(fichero)
    assert all(a["recibido_sin_contenido"] and not a["hash_comprobado"] for a in anexos)
    creado = sicres.asiento_create(fichero)
    assert creado.interesados[0].tipo_identificador is TipoIdentificador.NIF
    assert creado.unidad_destino == "L02000042"


def test_identificador_intercambio_has_the_standard_shape() -> None:
    assert sicres.identificador_intercambio("O00002741", 2013, 12) == "O00002741_13_00000012"
    longest = sicres.identificador_intercambio("E" * 21, 2099, 99_999_999)
    assert len(longest) == 33
    assert re.fullmatch(r"E{21}_99_99999999", longest)
    for bad in (("", 2026, 1), ("E" * 22, 2026, 1), ("L01_0001", 2026, 1), ("L01", 2026, 0)):
        with pytest.raises(ValueError):
            sicres.identificador_intercambio(*bad)
    with pytest.raises(ValueError):
        sicres.identificador_intercambio("L01030149", 2026, 100_000_000)


def test_iso_8859_1_and_utf_8_read_alike() -> None:
    utf8 = build(asiento())
    latin1 = utf8.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'").decode("utf-8")
    latin1_bytes = latin1.encode("iso-8859-1")
    assert latin1_bytes != utf8  # the accented letters are single bytes now
    assert sicres.parse_fichero(latin1_bytes) == sicres.parse_fichero(utf8)
    assert sicres.parse_fichero(latin1_bytes).resumen.endswith("año 2026")


def test_other_encodings_and_bad_bytes_are_refused() -> None:
    utf8 = build(asiento())
    utf16 = utf8.decode().replace("encoding='UTF-8'", "encoding='UTF-16'").encode("utf-16")
    with pytest.raises(sicres.FicheroInvalido, match="UTF-16"):
        sicres.parse_fichero(utf16)
    # Latin-1 bytes under a UTF-8 prolog are not UTF-8.
    with pytest.raises(sicres.FicheroInvalido):
        sicres.parse_fichero(utf8.decode().encode("iso-8859-1"))


def test_schema_errors_come_with_their_lines() -> None:
    data = build(asiento()).replace(
        b"<Tipo_Registro>1</Tipo_Registro>", b"<Tipo_Registro>7</Tipo_Registro>"
    )
    with pytest.raises(sicres.FicheroInvalido) as caught:
        sicres.parse_fichero(data)
    line = data[: data.index(b"<Tipo_Registro>")].count(b"\n") + 1
    assert any(n == line and "Tipo_Registro" in msg for n, msg in caught.value.errors)


def test_a_doctype_is_refused() -> None:
    data = build(asiento()).replace(
        b"?>\n", b'?>\n<!DOCTYPE Fichero_Intercambio_SICRES_3 [<!ENTITY x "y">]>\n', 1
    )
    with pytest.raises(sicres.FicheroInvalido, match="DOCTYPE"):
        sicres.parse_fichero(data)


def con_anexo(contenido: bytes, hash_b64: str) -> bytes:
    """A built file with one anexo carrying ``contenido`` and ``hash_b64``."""
    anexo = (
        "<De_Anexo><Nombre_Fichero_Anexado>a.txt</Nombre_Fichero_Anexado>"
        "<Identificador_Fichero>L01030149_26_00000001_01_0001.txt</Identificador_Fichero>"
        "<Tipo_Documento>02</Tipo_Documento>"
        f"<Hash>{hash_b64}</Hash><Tipo_MIME>text/plain</Tipo_MIME>"
        f"<Anexo>{base64.b64encode(contenido).decode()}</Anexo></De_Anexo>"
    ).encode()
    return build(asiento()).replace(b"<De_Internos_Control>", anexo + b"<De_Internos_Control>")


@pytest.mark.parametrize(
    ("algoritmo", "as_hex"), [("md5", True), ("sha256", True), ("sha256", False), ("sha512", False)]
)
def test_anexo_content_is_checked_against_its_hash(algoritmo: str, as_hex: bool) -> None:
    contenido = b"hola, registro"
    digest = hashlib.new(algoritmo, contenido)
    value = digest.hexdigest().encode() if as_hex else digest.digest()
    fichero = sicres.parse_fichero(con_anexo(contenido, base64.b64encode(value).decode()))
    [anexo] = sicres.comprobar_anexos(fichero)
    assert anexo["hash_comprobado"] and anexo["hash_algoritmo"] == algoritmo
    assert anexo["recibido_sin_contenido"] is False and anexo["tamano"] == len(contenido)

    otro = base64.b64encode(hashlib.new(algoritmo, b"otra cosa").hexdigest().encode()).decode()
    with pytest.raises(sicres.HashNoCoincide) as caught:
        sicres.comprobar_anexos(sicres.parse_fichero(con_anexo(contenido, otro)))
    assert caught.value.anexo == "L01030149_26_00000001_01_0001.txt"


def test_canarias_local_time_is_read_in_its_zone() -> None:
    assert sicres.zona_de_entidad("L01350167") == ZoneInfo("Atlantic/Canary")
    assert sicres.zona_de_entidad("O00002741") == MADRID
    fecha = sicres.leer_fecha_hora("20260302104103", sicres.zona_de_entidad("L01380380"))
    assert fecha.utcoffset() is not None and fecha.astimezone(UTC).hour == 10
