"""SICRES 3.0 control messages: built and read against the official mensaje.xsd, and the
file of a rejection, valid against ficheroIntercambio.xsd."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from services.registro.intercambios import mensajes as sicres_mensajes
from services.registro.intercambios import sicres
from services.registro.intercambios.mensajes import Mensaje, TipoMensaje

EJEMPLO = Path(__file__).parents[1] / "fixtures" / "sicres3" / "ejemplo-ficheroIntercambio.xml"


def ack(**overrides: object) -> Mensaje:
    data: dict[str, object] = {
        "codigo_entidad_origen": "O00002061",
        "codigo_entidad_destino": "O00002741",
        "identificador_intercambio": "O00002741_13_00000012",
        "tipo": TipoMensaje.ACK,
        "identificadores_fichero": ("O00002741_13_00000012_01_0001.pdf",),
    }
    data.update(overrides)
    return Mensaje(**data)  # type: ignore[arg-type]


def test_an_ack_validates_and_reads_back() -> None:
    data = sicres_mensajes.build_mensaje(ack())
    root = etree.fromstring(data)
    assert root.tag == "De_Mensaje"
    assert root.findtext("Tipo_Mensaje") == "01"
    assert root.findtext("Indicador_Prueba") == "0"
    assert sicres_mensajes.parse_mensaje(data) == ack()


def test_a_confirmation_carries_the_number_and_local_date_given_here() -> None:
    # 09:41:03 UTC is 10:41:03 in the peninsula in March, 09:41:03 in Canarias.
    instante = datetime(2026, 3, 2, 9, 41, 3, tzinfo=UTC)
    peninsula = ack(
        tipo=TipoMensaje.CONFIRMACION,
        numero_registro_destino="E/2026/000042",
        fecha_registro_destino=instante,
        identificadores_fichero=(),
    )
    data = sicres_mensajes.build_mensaje(peninsula)
    assert etree.fromstring(data).findtext("Fecha_Hora_Entrada_Destino") == "20260302104103"
    assert sicres_mensajes.parse_mensaje(data).fecha_registro_destino == instante
    canarias = ack(
        codigo_entidad_origen="L01350168",
        tipo=TipoMensaje.CONFIRMACION,
        numero_registro_destino="E/2026/000042",
        fecha_registro_destino=instante,
    )
    data = sicres_mensajes.build_mensaje(canarias)
    assert etree.fromstring(data).findtext("Fecha_Hora_Entrada_Destino") == "20260302094103"
    assert sicres_mensajes.parse_mensaje(data).fecha_registro_destino == instante


def test_a_confirmation_without_number_or_date_is_refused() -> None:
    with pytest.raises(ValueError, match="número y la fecha"):
        sicres_mensajes.build_mensaje(ack(tipo=TipoMensaje.CONFIRMACION))


def test_at_most_ten_files_are_named() -> None:
    ficheros = tuple(f"F{n:02d}" for n in range(12))
    data = sicres_mensajes.build_mensaje(ack(identificadores_fichero=ficheros))
    assert sicres_mensajes.parse_mensaje(data).identificadores_fichero == ficheros[:10]


def test_what_the_schema_refuses_is_refused_on_both_sides() -> None:
    with pytest.raises(sicres.FicheroInvalido):
        sicres_mensajes.build_mensaje(ack(identificador_intercambio="X" * 34))
    sin_tipo = sicres_mensajes.build_mensaje(ack()).replace(b"<Tipo_Mensaje>01</Tipo_Mensaje>", b"")
    with pytest.raises(sicres.FicheroInvalido):
        sicres_mensajes.parse_mensaje(sin_tipo)
    otro_tipo = sicres_mensajes.build_mensaje(ack()).replace(b">01<", b">07<")
    with pytest.raises(sicres.FicheroInvalido, match="Tipo_Mensaje"):
        sicres_mensajes.parse_mensaje(otro_tipo)
    with pytest.raises(sicres.FicheroInvalido):
        sicres_mensajes.parse_mensaje(b"<De_Mensaje>")


def test_a_rejection_sends_the_file_back_as_it_came_with_anotacion_04() -> None:
    original = EJEMPLO.read_bytes()
    data = sicres_mensajes.fichero_de_rechazo(original, "No es competencia de esta entidad")
    sicres.validate(data)
    control = etree.fromstring(data).find("De_Internos_Control")
    assert control is not None
    assert control.findtext("Tipo_Anotacion") == "04"
    assert control.findtext("Descripcion_Tipo_Anotacion") == "Rechazo"
    assert control.findtext("Observaciones_Apunte") == "No es competencia de esta entidad"
    antes, despues = sicres.parse_fichero(original), sicres.parse_fichero(data)
    assert despues.identificador_intercambio == antes.identificador_intercambio
    assert despues.interesados == antes.interesados
    assert [a.identificador_fichero for a in despues.anexos] == [
        a.identificador_fichero for a in antes.anexos
    ]
    largo = sicres_mensajes.fichero_de_rechazo(original, "m" * 80)
    sicres.validate(largo)
    observaciones = etree.fromstring(largo).findtext("De_Internos_Control/Observaciones_Apunte")
    assert observaciones == "m" * 49 + "…"
