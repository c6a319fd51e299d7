"""Procedure definitions: the shipped ones and the guide's example are valid, and the
rules between parts catch what the JSON Schema cannot."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from services.tramitador.procedimientos.domain import (
    DefinicionInvalida,
    EstadoVersion,
    definiciones_incluidas,
    leer_yaml,
    puede_pasar,
    validar,
)

GUIDE = Path(__file__).parents[2] / "docs" / "tramitador.md"


def test_the_guides_full_example_is_a_valid_definition() -> None:
    [block] = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    definicion = validar(leer_yaml(block))
    assert definicion.codigo == "licencia-vado"
    assert definicion.fase_inicial == "inicio"


def test_every_shipped_definition_has_the_steps_of_the_law() -> None:
    definiciones = definiciones_incluidas()
    assert len(definiciones) == 20
    for d in definiciones:
        tipos = {a["tipo"] for a in d.acciones.values()}
        assert {"resolver", "archivar", "reabrir", "emitir-informe"} <= tipos, d.codigo
        if "solicitud" in d.data["iniciacion"]:
            assert "requerir-subsanacion" in tipos, d.codigo
        if d.data["iniciacion"] == ["oficio"]:
            assert any("caducidad" in a.get("sentidos", []) for a in d.acciones.values())


def test_references_between_parts_are_checked() -> None:
    base = copy.deepcopy(definiciones_incluidas()[0].data)
    base["flujo"]["fase_inicial"] = "nada"
    base["flujo"]["acciones"][1]["al_vencer"] = "no-existe"
    base["flujo"]["acciones"][2]["documento"] = "sin-plantilla"
    with pytest.raises(DefinicionInvalida) as caught:
        validar(base)
    assert {p.ruta for p in caught.value.problemas} == {
        "flujo.fase_inicial",
        "flujo.acciones[1].al_vencer",
        "flujo.acciones[2].documento",
    }


def test_an_audiencia_says_what_happens_when_its_plazo_ends() -> None:
    generico = next(d for d in definiciones_incluidas() if d.codigo == "generico")
    assert generico.acciones["abrir-audiencia"]["al_vencer"] == "cerrar-audiencia"
    acciones = generico.data["flujo"]["acciones"]
    i = next(n for n, a in enumerate(acciones) if a["codigo"] == "abrir-audiencia")
    sin = copy.deepcopy(generico.data)
    del sin["flujo"]["acciones"][i]["al_vencer"]
    # An action the expediente cannot take where the audiencia leaves it never fires.
    imposible = copy.deepcopy(generico.data)
    imposible["flujo"]["acciones"][i]["al_vencer"] = "formular-propuesta"
    for data in (sin, imposible):
        with pytest.raises(DefinicionInvalida) as caught:
            validar(data)
        assert [p.ruta for p in caught.value.problemas] == [f"flujo.acciones[{i}].al_vencer"]


def test_a_resolution_names_the_document_that_is_notified() -> None:
    generico = next(d for d in definiciones_incluidas() if d.codigo == "generico")
    acciones = generico.data["flujo"]["acciones"]
    i = next(n for n, a in enumerate(acciones) if a["codigo"] == "resolver")
    sin = copy.deepcopy(generico.data)
    del sin["flujo"]["acciones"][i]["documento"]
    with pytest.raises(DefinicionInvalida) as caught:
        validar(sin)
    assert [p.ruta for p in caught.value.problemas] == [f"flujo.acciones[{i}].documento"]


def test_yaml_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(DefinicionInvalida):
        leer_yaml("- uno\n- dos\n")


def test_version_states_only_move_forward() -> None:
    assert puede_pasar(EstadoVersion.BORRADOR, EstadoVersion.PUBLICADO)
    assert puede_pasar(EstadoVersion.PUBLICADO, EstadoVersion.RETIRADO)
    assert not puede_pasar(EstadoVersion.PUBLICADO, EstadoVersion.BORRADOR)
    assert not puede_pasar(EstadoVersion.RETIRADO, EstadoVersion.PUBLICADO)


def test_fees_are_decimal_strings_and_numbers_convert_exactly() -> None:
    for d in definiciones_incluidas():
        for tasa in d.data.get("tasas", []):
            assert tasa["importe"] is None or isinstance(tasa["importe"], str), d.codigo
    vado = next(d for d in definiciones_incluidas() if d.codigo == "licencia-vado")
    texto = GUIDE.read_text(encoding="utf-8")
    [block] = re.findall(r"```yaml\n(.*?)```", texto, re.S)
    # A number in an older file converts from its text, never through a binary float.
    for escrito, esperado in (
        ("95.10", "95.10"),
        ("7", "7.00"),
        ("0.1", "0.10"),
        ("1.0e+2", "100.00"),
    ):
        data = leer_yaml(block.replace('importe: "95.00"', f"importe: {escrito}"))
        assert validar(data).data["tasas"][0]["importe"] == esperado, escrito
    # A JSON client's float is read by its shortest text, what it wrote.
    json_data = copy.deepcopy(vado.data)
    json_data["tasas"][0]["importe"] = 110.0
    assert validar(json_data).data["tasas"][0]["importe"] == "110.00"
    # Fractions of a cent and non-numbers are refused naming the path.
    for malo in ("0.125", '"95,00"', '"-1"', "true"):
        with pytest.raises(DefinicionInvalida) as exc:
            validar(leer_yaml(block.replace('importe: "95.00"', f"importe: {malo}")))
        assert [p.ruta for p in exc.value.problemas] == ["tasas[0].importe"], malo


def test_the_shipped_definitions_are_read_once_per_process() -> None:
    # Each expediente opened for a council not yet seeded asks for them.
    assert definiciones_incluidas() is definiciones_incluidas()
