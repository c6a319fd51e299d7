"""Legal deadlines (Ley 39/2015, art. 30) on the 2025 and 2026 calendars of the
Comunitat Valenciana and the Comunidad de Madrid, with local holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.common.timezones import tenant_timezone
from services.tramitador.calendario.domain import (
    Calendario,
    Unidad,
    comunidad_de,
    comunidades_de_residencia,
    dia_de_computo,
    dias_habiles_entre,
    sumar_meses,
    vencimiento,
)

# València: San Vicente Mártir (22 January) and San Vicente Ferrer (Monday after Easter week).
VALENCIA = Calendario.de(
    "46250", [date(2025, 1, 22), date(2025, 4, 28), date(2026, 1, 22), date(2026, 4, 13)]
)
VALENCIA_SIN_LOCALES = Calendario.de("46250")
# Madrid: San Isidro (15 May) and la Almudena (9 November, a Sunday in 2025 → 10 November).
MADRID = Calendario.de("28079", [date(2025, 5, 15), date(2025, 11, 10), date(2026, 5, 15)])

H, N, M, A = Unidad.DIAS_HABILES, Unidad.DIAS_NATURALES, Unidad.MESES, Unidad.ANIOS


@pytest.mark.parametrize(
    ("ine", "comunidad", "zona"),
    [
        ("03014", "VC", "Europe/Madrid"),
        ("46250", "VC", "Europe/Madrid"),
        ("12040", "VC", "Europe/Madrid"),
        ("28079", "MD", "Europe/Madrid"),
        ("08019", "CT", "Europe/Madrid"),
        ("41091", "AN", "Europe/Madrid"),
        ("35016", "CN", "Atlantic/Canary"),
        ("38038", "CN", "Atlantic/Canary"),
        ("99001", None, "Europe/Madrid"),
    ],
)
def test_the_ine_province_gives_the_comunidad_and_time_zone(
    ine: str, comunidad: str | None, zona: str
) -> None:
    assert comunidad_de(ine) == comunidad
    assert str(tenant_timezone(ine)) == zona


def test_easter_2025_valencia_counts_regional_and_local_holidays() -> None:
    # From Thursday 10 April: Good Friday (18) and Easter Monday (21) are regional in the
    # Comunitat Valenciana; 28 April is València's San Vicente Ferrer.
    assert vencimiento(date(2025, 4, 10), 10, H, VALENCIA) == date(2025, 4, 29)
    assert vencimiento(date(2025, 4, 10), 10, H, VALENCIA_SIN_LOCALES) == date(2025, 4, 28)


def test_easter_2025_madrid_has_holy_thursday_but_not_easter_monday() -> None:
    assert vencimiento(date(2025, 4, 10), 10, H, MADRID) == date(2025, 4, 28)
    assert not MADRID.es_habil(date(2025, 4, 17))
    assert MADRID.es_habil(date(2025, 4, 21))
    assert not VALENCIA.es_habil(date(2025, 4, 21))


def test_counting_starts_the_day_after_and_skips_weekends() -> None:
    # Notified on Friday 6 March 2026: day one is Monday 9.
    assert vencimiento(date(2026, 3, 6), 1, H, MADRID) == date(2026, 3, 9)
    assert vencimiento(date(2026, 3, 6), 0, H, MADRID) == date(2026, 3, 6)
    # Ten días hábiles over San José (19 March), a holiday in Valencia and not in Madrid.
    assert vencimiento(date(2026, 3, 10), 10, H, VALENCIA) == date(2026, 3, 25)
    assert vencimiento(date(2026, 3, 10), 10, H, MADRID) == date(2026, 3, 24)


def test_local_holiday_of_2026_is_inhabil_only_for_its_council() -> None:
    assert vencimiento(date(2026, 1, 21), 1, H, VALENCIA) == date(2026, 1, 23)
    assert vencimiento(date(2026, 1, 21), 1, H, VALENCIA_SIN_LOCALES) == date(2026, 1, 22)
    assert vencimiento(date(2026, 5, 14), 1, H, MADRID) == date(2026, 5, 18)


def test_plazo_across_new_year() -> None:
    # 31 Dec hábil, 1 Jan holiday, 2 Jan Friday, then Monday 5 (6 is Epifanía).
    assert vencimiento(date(2025, 12, 30), 3, H, VALENCIA) == date(2026, 1, 5)
    assert vencimiento(date(2025, 12, 30), 4, H, VALENCIA) == date(2026, 1, 7)


@pytest.mark.parametrize(
    ("desde", "meses", "esperado"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 3, 31), 1, date(2025, 4, 30)),
        (date(2025, 11, 30), 3, date(2026, 2, 28)),
        (date(2025, 10, 15), 3, date(2026, 1, 15)),
        (date(2026, 8, 31), 18, date(2028, 2, 29)),
    ],
)
def test_months_run_date_to_date_or_to_the_last_day(
    desde: date, meses: int, esperado: date
) -> None:
    assert sumar_meses(desde, meses) == esperado


def test_month_plazo_ending_on_a_weekend_moves_to_monday() -> None:
    # 31 January 2026 + 1 month → 28 February 2026, a Saturday → Monday 2 March.
    assert vencimiento(date(2026, 1, 31), 1, M, MADRID) == date(2026, 3, 2)
    # 31 August 2025 + 3 months → 30 November 2025, a Sunday → Monday 1 December.
    assert vencimiento(date(2025, 8, 31), 3, M, VALENCIA) == date(2025, 12, 1)
    # 31 January 2025 + 1 month → Friday 28 February 2025 stays.
    assert vencimiento(date(2025, 1, 31), 1, M, VALENCIA) == date(2025, 2, 28)


def test_plazo_ending_on_a_regional_holiday_moves_to_the_next_habil_day() -> None:
    # 9 October 2026 (Friday) is the Día de la Comunitat Valenciana; Monday 12 is the
    # Fiesta Nacional: the plazo ends on Tuesday 13. In Madrid the 9th is hábil.
    assert vencimiento(date(2026, 9, 9), 1, M, VALENCIA) == date(2026, 10, 13)
    assert vencimiento(date(2026, 9, 9), 1, M, MADRID) == date(2026, 10, 9)


def test_plazo_ending_on_a_local_holiday_moves_on() -> None:
    # Five días naturales from Sunday 10 May 2026 end on Friday 15, San Isidro in Madrid
    # (a local holiday): there the plazo ends on Monday 18.
    assert vencimiento(date(2026, 5, 10), 5, N, MADRID) == date(2026, 5, 18)
    assert vencimiento(date(2026, 5, 10), 5, N, VALENCIA) == date(2026, 5, 15)


def test_natural_days_ending_on_christmas() -> None:
    assert vencimiento(date(2025, 12, 15), 10, N, VALENCIA) == date(2025, 12, 26)
    assert vencimiento(date(2025, 12, 15), 10, N, MADRID) == date(2025, 12, 26)


def test_years_run_date_to_date() -> None:
    assert vencimiento(date(2024, 2, 29), 1, A, MADRID) == date(2025, 2, 28)
    # 1 May 2025 + 1 year = 1 May 2026, Fiesta del Trabajo (Friday) → Monday 4 May.
    assert vencimiento(date(2025, 5, 1), 1, A, VALENCIA) == date(2026, 5, 4)


def test_negative_plazo_is_refused() -> None:
    with pytest.raises(ValueError):
        vencimiento(date(2026, 1, 1), -1, H, MADRID)


def test_dias_habiles_left() -> None:
    assert dias_habiles_entre(date(2026, 3, 10), date(2026, 3, 25), VALENCIA) == 10
    assert dias_habiles_entre(date(2026, 3, 25), date(2026, 3, 10), VALENCIA) == -10
    assert dias_habiles_entre(date(2026, 3, 10), date(2026, 3, 10), VALENCIA) == 0


def test_the_time_zone_of_the_council_decides_the_day() -> None:
    # Friday 20 March 2026, 23:30 UTC: already Saturday in Madrid (inhábil, so the
    # presentation counts from Monday 23), still Friday in the Canary Islands.
    instante = datetime(2026, 3, 20, 23, 30, tzinfo=UTC)
    assert dia_de_computo(instante, "28079", MADRID) == date(2026, 3, 23)
    canarias = Calendario.de("35016")
    assert dia_de_computo(instante, "35016", canarias) == date(2026, 3, 20)


def test_holiday_list_names_local_and_regional_days() -> None:
    festivos = VALENCIA.festivos(2026)
    assert festivos[date(2026, 1, 22)] == "Fiesta local"
    assert date(2026, 10, 9) in festivos
    assert date(2026, 10, 9) not in MADRID.festivos(2026)
    assert MADRID.festivos(2026)[date(2026, 5, 15)] == "Fiesta local"


ALICANTE = Calendario.de("03014")


def test_residence_abroad_or_unknown_adds_no_comunidad() -> None:
    interesados = [
        {"municipio": "28079"},
        {"provincia": "08", "municipio": "19"},  # a short municipio: the province decides
        {"pais": "250", "municipio": "28079"},  # lives in France
        {"identificador": "12345678Z"},  # no address
        {"municipio": "99999"},  # no such province
    ]
    assert comunidades_de_residencia(interesados) == {"MD", "CT"}


def test_art_30_6_a_holiday_where_the_interesado_lives_is_inhabil() -> None:
    # 2 November 2026 (Monday) is a holiday in Madrid, a working day in Alicante.
    desde = date(2026, 10, 30)
    assert vencimiento(desde, 1, H, ALICANTE) == date(2026, 11, 2)
    madrileno = ALICANTE.con_residencias(comunidades_de_residencia([{"municipio": "28079"}]))
    assert madrileno.residencias == {"MD"}
    assert vencimiento(desde, 1, H, madrileno) == date(2026, 11, 3)
    # A neighbour of the same comunidad changes nothing.
    vecino = ALICANTE.con_residencias(comunidades_de_residencia([{"municipio": "46250"}]))
    assert vecino.residencias == frozenset()
    assert vencimiento(desde, 1, H, vecino) == date(2026, 11, 2)


def test_art_30_6_the_other_way_round_a_holiday_at_the_seat_only() -> None:
    # Easter Monday 2026 (6 April) is inhábil in Valencia, hábil in Madrid: a council of
    # Madrid counting for an interesado who lives in València skips it.
    desde = date(2026, 4, 2)
    assert vencimiento(desde, 1, H, MADRID) == date(2026, 4, 6)
    valenciano = MADRID.con_residencias(comunidades_de_residencia([{"municipio": "46250"}]))
    assert vencimiento(desde, 1, H, valenciano) == date(2026, 4, 7)
    assert dias_habiles_entre(desde, date(2026, 4, 7), valenciano) == 1
    # And the council's own local holidays stay inhábiles (San Isidro).
    assert not valenciano.es_habil(date(2026, 5, 15))


def test_art_30_6_a_month_plazo_ending_on_the_residences_holiday_moves_on() -> None:
    # 2 October + 1 month = 2 November 2026: hábil in Alicante, a holiday in Madrid (30.5).
    madrileno = ALICANTE.con_residencias({"MD"})
    assert vencimiento(date(2026, 10, 2), 1, M, ALICANTE) == date(2026, 11, 2)
    assert vencimiento(date(2026, 10, 2), 1, M, madrileno) == date(2026, 11, 3)
    # Natural days too: 7 December 2026 is a holiday in Madrid only.
    assert vencimiento(date(2026, 11, 27), 10, N, ALICANTE) == date(2026, 12, 7)
    assert vencimiento(date(2026, 11, 27), 10, N, madrileno) == date(2026, 12, 9)
