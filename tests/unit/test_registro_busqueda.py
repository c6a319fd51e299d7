"""Pure rules of the asiento search: cursors, instants, numbers, interesado terms."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.registro.asientos.domain import (
    Cursor,
    TerminoInteresado,
    clasificar_interesado,
    decode_cursor,
    encode_cursor,
    like_contains,
    parse_instante,
    texto_buscado,
    validate_numero,
)

MADRID = ZoneInfo("Europe/Madrid")
ID = "0195a3c4-1f0a-7d2e-8c55-6b3f1e9a7d20"


def test_cursor_round_trips_and_is_url_safe() -> None:
    cursor = Cursor(datetime(2026, 3, 2, 9, 41, 3, 518000, tzinfo=UTC), ID)
    encoded = encode_cursor(cursor)
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(encoded) == cursor


@pytest.mark.parametrize(
    "value",
    [
        "no-es-un-cursor",
        "",
        base64.urlsafe_b64encode(b'["2026-03-02T09:41:03", "' + ID.encode() + b'"]').decode(),
        base64.urlsafe_b64encode(b'["2026-03-02T09:41:03+00:00", "x"]').decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),
    ],
)
def test_anything_but_a_cursor_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor(value)


def test_a_date_is_the_local_midnight_and_a_naive_time_is_local() -> None:
    assert parse_instante("2026-03-02", MADRID) == datetime(2026, 3, 1, 23, tzinfo=UTC)
    canarias = ZoneInfo("Atlantic/Canary")
    assert parse_instante("2026-07-01T10:00:00", canarias) == datetime(2026, 7, 1, 9, tzinfo=UTC)
    assert parse_instante("2026-07-01T10:00:00Z", MADRID) == datetime(2026, 7, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("value", ["ayer", "2026-13-01", "2026-02-30", "02/03/2026"])
def test_bad_dates_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="fecha"):
        parse_instante(value, MADRID)


def test_numero_is_normalised_or_refused() -> None:
    assert validate_numero(" e/2026/000001 ") == "E/2026/000001"
    for bad in ("X/2026/000001", "E/26/000001", "E/2026/1"):
        with pytest.raises(ValueError, match="número"):
            validate_numero(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.345.678-z", TerminoInteresado(identificador="12345678Z")),
        ("x1234567l", TerminoInteresado(identificador="X1234567L")),
        ("B-12345674", TerminoInteresado(identificador="B12345674")),
        ("pa 123456", TerminoInteresado(identificador="PA123456")),
        ("  María   Núñez ", TerminoInteresado(nombre="María Núñez")),
        ("Construcciones Benalúa S.L.", TerminoInteresado(nombre="Construcciones Benalúa S.L.")),
    ],
)
def test_interesado_is_an_identifier_or_a_name(value: str, expected: TerminoInteresado) -> None:
    assert clasificar_interesado(value) == expected


def test_short_texts_are_refused() -> None:
    with pytest.raises(ValueError, match="3"):
        texto_buscado("  ab   ")
    assert texto_buscado(" obra   menor ") == "obra menor"


def test_like_wildcards_are_taken_literally() -> None:
    assert like_contains("100%_a\\b") == "%100\\%\\_a\\\\b%"
