"""Pure rules of the registro: numbering, identifiers, register year, DIR3."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.registro.domain import (
    TipoAsiento,
    TipoIdentificador,
    anio_registral,
    format_numero,
    normalize_identificador,
    serie_de,
    validate_dir3,
)


@pytest.mark.parametrize(
    ("tipo", "anio", "secuencia", "numero"),
    [
        (TipoAsiento.ENTRADA, 2026, 1, "E/2026/000001"),
        (TipoAsiento.SALIDA, 2026, 42, "S/2026/000042"),
        (TipoAsiento.ENTRADA, 2027, 1234567, "E/2027/1234567"),
    ],
)
def test_numero_format(tipo: TipoAsiento, anio: int, secuencia: int, numero: str) -> None:
    assert format_numero(tipo, anio, secuencia) == numero


def test_numero_starts_at_one() -> None:
    with pytest.raises(ValueError):
        format_numero(TipoAsiento.ENTRADA, 2026, 0)


def test_books_have_their_own_series() -> None:
    assert serie_de(TipoAsiento.ENTRADA) != serie_de(TipoAsiento.SALIDA)


@pytest.mark.parametrize(
    ("tipo", "raw", "normalized"),
    [
        (TipoIdentificador.NIF, "12345678z", "12345678Z"),
        (TipoIdentificador.NIF, "12.345.678-Z", "12345678Z"),
        (TipoIdentificador.NIE, "x1234567l", "X1234567L"),
        (TipoIdentificador.CIF, "B12345674", "B12345674"),
        (TipoIdentificador.PASAPORTE, "pa 123456", "PA123456"),
    ],
)
def test_identifiers_are_normalized(tipo: TipoIdentificador, raw: str, normalized: str) -> None:
    assert normalize_identificador(tipo, raw) == normalized


@pytest.mark.parametrize(
    ("tipo", "raw", "message"),
    [
        (TipoIdentificador.NIF, "12345678A", "control"),
        (TipoIdentificador.NIF, "1234567Z", "longitud"),
        (TipoIdentificador.NIE, "X1234567A", "control"),
        (TipoIdentificador.CIF, "B12345675", "control"),
        (TipoIdentificador.NIF, "X1234567L", "NIE"),
        (TipoIdentificador.PASAPORTE, "!!", "PASAPORTE"),
    ],
)
def test_invalid_identifiers_are_refused(tipo: TipoIdentificador, raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_identificador(tipo, raw)


def test_register_year_is_the_entitys_local_year() -> None:
    new_years_eve = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    # 00:30 on 1 January in the Peninsula, still 23:30 on 31 December in Canarias.
    assert anio_registral(new_years_eve, "03014") == 2027
    assert anio_registral(new_years_eve, "35016") == 2026


def test_register_year_needs_a_time_zone() -> None:
    with pytest.raises(ValueError):
        anio_registral(datetime(2026, 1, 1), "03014")


@pytest.mark.parametrize("code", ["L01030149", "l01462508", "E04990101"])
def test_valid_dir3(code: str) -> None:
    assert validate_dir3(code) == code.upper()


@pytest.mark.parametrize("code", ["", "L0103014", "101030149", "L01030149X", "L0103-149"])
def test_invalid_dir3(code: str) -> None:
    with pytest.raises(ValueError):
        validate_dir3(code)
