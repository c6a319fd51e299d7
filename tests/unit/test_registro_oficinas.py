"""Pure rules of oficinas, libros and numbering modes: codes, per-oficina numbers, which
libro an asiento goes into, and when a change of mode takes effect."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from services.registro.domain import TipoAsiento, serie_de
from services.registro.oficinas.domain import (
    PREFIJO_SERIES,
    EstadoLibro,
    LibroNoDisponible,
    LibroVigente,
    ModoNumeracion,
    cambio_de_modo,
    elegir_libro,
    format_numero_oficina,
    modo_vigente,
    nombre_libro,
    serie_oficina,
    validate_codigo_oficina,
)
from services.registro.oficinas.schemas import CierreCreate, LibroCreate, OficinaCreate

E, S = TipoAsiento.ENTRADA, TipoAsiento.SALIDA
CENTRAL, OFICINA = ModoNumeracion.CENTRAL, ModoNumeracion.OFICINA
ABIERTO, CERRADO = EstadoLibro.ABIERTO, EstadoLibro.CERRADO


def test_oficina_codes_are_dir3_codes_starting_with_o() -> None:
    assert validate_codigo_oficina(" o00002741 ") == "O00002741"
    for bad in ("L01030149", "O0000274", "O000027411", "O0000274-"):
        with pytest.raises(ValueError):
            validate_codigo_oficina(bad)


def test_per_oficina_numbers_keep_the_contracts_shape_within_20_characters() -> None:
    numero = format_numero_oficina(E, 2026, 2, 12)
    assert numero == "E/2026/002000012"
    # The shape registro.asiento.registrado.v1 (and anulado, intercambio.aceptado) pins.
    shape = re.compile(r"^[ES]/\d{4}/\d{6,}$")
    assert shape.match(numero)
    assert format_numero_oficina(S, 2031, 999, 1_234_567) == "S/2031/9991234567"
    largest = format_numero_oficina(S, 2031, 999, 9_999_999_999)
    assert shape.match(largest) and len(largest) == 20
    for prefijo, secuencia in ((0, 1), (1000, 1), (1, 0), (1, 10_000_000_000)):
        with pytest.raises(ValueError):
            format_numero_oficina(E, 2026, prefijo, secuencia)


def test_each_oficina_and_tipo_has_its_own_series_under_the_common_prefix() -> None:
    series = {
        serie_de(E),
        serie_de(S),
        serie_oficina(E, "O00000001"),
        serie_oficina(S, "O00000001"),
        serie_oficina(E, "O00000002"),
    }
    assert len(series) == 5
    assert all(s.startswith(PREFIJO_SERIES) for s in series)
    assert all(len(s) <= 50 for s in series)  # counters.serie is String(50)


def test_mode_of_a_year_is_the_latest_change_by_then() -> None:
    assert modo_vigente([], 2026) is CENTRAL
    cambios = [(2026, OFICINA), (2028, CENTRAL)]
    assert modo_vigente(cambios, 2025) is CENTRAL
    assert modo_vigente(cambios, 2026) is OFICINA
    assert modo_vigente(cambios, 2027) is OFICINA
    assert modo_vigente(cambios, 2028) is CENTRAL
    assert modo_vigente(list(reversed(cambios)), 2029) is CENTRAL


def test_a_change_is_immediate_only_in_a_year_with_nothing_numbered() -> None:
    plan = cambio_de_modo([], modo=OFICINA, anio=2026, ha_numerado=False)
    assert (plan.desde, plan.anadir) == (2026, True)
    plan = cambio_de_modo([], modo=OFICINA, anio=2026, ha_numerado=True)
    assert (plan.desde, plan.anadir) == (2027, True)


def test_asking_for_the_current_mode_adds_nothing_and_cancels_a_scheduled_change() -> None:
    assert cambio_de_modo([], modo=CENTRAL, anio=2026, ha_numerado=True).anadir is False
    scheduled = [(2027, OFICINA)]
    plan = cambio_de_modo(scheduled, modo=CENTRAL, anio=2026, ha_numerado=True)
    # Rows from 2027 on are dropped and none added: 2027 stays central.
    assert (plan.desde, plan.anadir) == (2027, False)
    # Asking again for what was scheduled replaces it with the same change.
    plan = cambio_de_modo(scheduled, modo=OFICINA, anio=2026, ha_numerado=True)
    assert (plan.desde, plan.anadir) == (2027, True)


def test_libro_names_say_tipo_and_ambito() -> None:
    assert nombre_libro(E, None) == "libro de entrada central"
    assert nombre_libro(S, "O00002741") == "libro de salida de la oficina O00002741"


def _libro(tipo: TipoAsiento, oficina: str | None, estado: EstadoLibro = ABIERTO) -> LibroVigente:
    return LibroVigente(f"{tipo.value}-{oficina}", tipo, oficina, estado)


def test_without_libros_of_a_tipo_the_book_is_implicit() -> None:
    assert elegir_libro([], tipo=E, oficina=None) is None
    # A libro of the other tipo does not make this one need one.
    assert elegir_libro([_libro(S, None, CERRADO)], tipo=E, oficina="O00000001") is None


def test_the_oficinas_own_libro_wins_over_the_central_one() -> None:
    central, propio = _libro(E, None, CERRADO), _libro(E, "O00000001")
    assert elegir_libro([central, propio], tipo=E, oficina="O00000001") == propio
    with pytest.raises(LibroNoDisponible, match="libro de entrada central .* está cerrado"):
        elegir_libro([central, propio], tipo=E, oficina="O00000002")
    with pytest.raises(LibroNoDisponible, match="central"):
        elegir_libro([central, propio], tipo=E, oficina=None)


def test_once_a_tipo_has_libros_an_asiento_without_one_is_refused() -> None:
    solo_oficina = [_libro(E, "O00000001")]
    with pytest.raises(
        LibroNoDisponible, match="No hay libro de entrada para la oficina O00000002"
    ):
        elegir_libro(solo_oficina, tipo=E, oficina="O00000002")
    with pytest.raises(LibroNoDisponible, match="No hay libro de entrada central"):
        elegir_libro(solo_oficina, tipo=E, oficina=None)
    cerrado = [_libro(E, "O00000001", CERRADO)]
    with pytest.raises(LibroNoDisponible, match="oficina O00000001 .* está cerrado"):
        elegir_libro(cerrado, tipo=E, oficina="O00000001")


def test_request_models_validate_codes_and_reasons() -> None:
    assert OficinaCreate(codigo="o00000001", nombre=" Central ").model_dump() == {
        "codigo": "O00000001",
        "nombre": "Central",
        "electronica": False,
    }
    with pytest.raises(ValidationError, match="codigo"):
        OficinaCreate(codigo="L01030149", nombre="Ayuntamiento")
    with pytest.raises(ValidationError, match="nombre"):
        OficinaCreate(codigo="O00000001", nombre="   ")
    assert LibroCreate(tipo=E).oficina is None
    assert LibroCreate(tipo=E, oficina="o00000001").oficina == "O00000001"
    with pytest.raises(ValidationError, match="oficina"):
        LibroCreate(tipo=E, oficina="A01000000")
    assert CierreCreate(motivo=" fin de año ").motivo == "fin de año"
    with pytest.raises(ValidationError, match="motivo"):
        CierreCreate(motivo=" ")
