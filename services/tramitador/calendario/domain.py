"""Días hábiles and legal deadlines (Ley 39/2015, art. 30): pure rules, no I/O.

A council's calendar is the national holidays, those of its comunidad autónoma (the
``holidays`` library) and its own local holidays. The comunidad and the time zone come
from the INE code: its first two digits are the province.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import holidays

from services.common.timezones import tenant_timezone

__all__ = [
    "Calendario",
    "Unidad",
    "comunidad_de",
    "comunidades_de_residencia",
    "dia_de_computo",
    "dias_habiles_entre",
    "sumar_meses",
    "vencimiento",
]


class Unidad(StrEnum):
    """How a plazo is expressed (art. 30.1-30.4)."""

    DIAS_HABILES = "dias_habiles"
    DIAS_NATURALES = "dias_naturales"
    MESES = "meses"
    ANIOS = "anios"


# INE province code → ISO 3166-2:ES code of its comunidad autónoma (as `holidays` names it).
_COMUNIDAD_POR_PROVINCIA: dict[str, str] = {
    **dict.fromkeys(("04", "11", "14", "18", "21", "23", "29", "41"), "AN"),
    **dict.fromkeys(("22", "44", "50"), "AR"),
    "33": "AS",
    "07": "IB",
    **dict.fromkeys(("35", "38"), "CN"),
    "39": "CB",
    **dict.fromkeys(("05", "09", "24", "34", "37", "40", "42", "47", "49"), "CL"),
    **dict.fromkeys(("02", "13", "16", "19", "45"), "CM"),
    **dict.fromkeys(("08", "17", "25", "43"), "CT"),
    **dict.fromkeys(("06", "10"), "EX"),
    **dict.fromkeys(("15", "27", "32", "36"), "GA"),
    "28": "MD",
    "30": "MC",
    "31": "NC",
    **dict.fromkeys(("01", "20", "48"), "PV"),
    "26": "RI",
    **dict.fromkeys(("03", "12", "46"), "VC"),
    "51": "CE",
    "52": "ML",
}


def comunidad_de(ine: str) -> str | None:
    """The comunidad autónoma of a municipality by its INE code (``03014`` → ``VC``);
    None for a code whose province does not exist (only national holidays then)."""
    return _COMUNIDAD_POR_PROVINCIA.get(ine[:2])


@lru_cache(maxsize=64)
def _oficiales(comunidad: str | None, anio: int) -> dict[date, str]:
    """National and regional holidays of one year, by name in Spanish."""
    found = holidays.country_holidays("ES", subdiv=comunidad, years=anio, language="es")
    return dict(found.items())


def comunidades_de_residencia(interesados: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The comunidades autónomas where the interesados live, from the INE code of their
    ``municipio`` (five digits) or else their ``provincia`` (two); a residence
    abroad (``pais`` other than 724, Spain) or unknown adds none."""
    found: set[str] = set()
    for interesado in interesados:
        pais = str(interesado.get("pais") or "724")
        municipio = str(interesado.get("municipio") or "")
        codigo = municipio if len(municipio) == 5 else str(interesado.get("provincia") or "")
        if pais != "724" or not codigo[:2].isdigit():
            continue
        comunidad = comunidad_de(codigo)
        if comunidad is not None:
            found.add(comunidad)
    return frozenset(found)


@dataclass(frozen=True)
class Calendario:
    """The días inhábiles of one council: weekends, official and local holidays; and,
    for the plazos of an expediente, those of the comunidades where its interesados live
    (art. 30.6)."""

    comunidad: str | None
    festivos_locales: frozenset[date] = field(default_factory=frozenset)
    residencias: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def de(cls, ine: str, locales: Iterable[date] = ()) -> Calendario:
        """The calendar of the council with this INE code and these local holidays."""
        return cls(comunidad_de(ine), frozenset(locales))

    def con_residencias(self, comunidades: Iterable[str]) -> Calendario:
        """Art. 30.6: a day hábil where the interesado lives and inhábil at the body's
        seat, or the other way round, is inhábil in every case. The calendar of the seat
        joined with the official holidays of the interesados' comunidades."""
        otras = frozenset(c for c in comunidades if c != self.comunidad)
        return Calendario(self.comunidad, self.festivos_locales, self.residencias | otras)

    def festivos(self, anio: int) -> dict[date, str]:
        """Every holiday of a year (national, regional and local), by date."""
        found = dict(_oficiales(self.comunidad, anio))
        for dia in self.festivos_locales:
            if dia.year == anio:
                found.setdefault(dia, "Fiesta local")
        return dict(sorted(found.items()))

    def es_habil(self, dia: date) -> bool:
        """Art. 30.2: Saturdays, Sundays and declared holidays are inhábiles."""
        if dia.weekday() >= 5 or dia in self.festivos_locales:
            return False
        if dia in _oficiales(self.comunidad, dia.year):
            return False
        return not any(dia in _oficiales(c, dia.year) for c in self.residencias)

    def siguiente_habil(self, dia: date) -> date:
        """``dia`` itself when hábil, else the first hábil day after it (art. 30.5)."""
        while not self.es_habil(dia):
            dia += timedelta(days=1)
        return dia


def sumar_meses(desde: date, meses: int) -> date:
    """Date to date (art. 30.4): the same day ``meses`` later, or the last day of that
    month when it has no such day (31 January + 1 month → 28 or 29 February)."""
    total = desde.month - 1 + meses
    anio, mes = desde.year + total // 12, total % 12 + 1
    return date(anio, mes, min(desde.day, calendar.monthrange(anio, mes)[1]))


def vencimiento(desde: date, cantidad: int, unidad: Unidad, calendario: Calendario) -> date:
    """The last day of a plazo that starts counting the day after ``desde`` (art. 30).

    * días hábiles: the ``cantidad``-th hábil day after ``desde`` (art. 30.2, 30.3);
      counting from the day after: a plazo of 0 ends on ``desde`` itself;
    * días naturales: ``cantidad`` calendar days after ``desde`` (art. 30.2);
    * meses and años: the same day of the month of expiry, or its last day (art. 30.4);
    * a plazo that ends on an inhábil day ends on the next hábil day (art. 30.5).
    """
    if cantidad < 0:
        raise ValueError("un plazo no puede ser negativo")
    if unidad is Unidad.DIAS_HABILES:
        dia, contados = desde, 0
        while contados < cantidad:
            dia += timedelta(days=1)
            if calendario.es_habil(dia):
                contados += 1
        return dia
    if unidad is Unidad.DIAS_NATURALES:
        fin = desde + timedelta(days=cantidad)
    elif unidad is Unidad.MESES:
        fin = sumar_meses(desde, cantidad)
    else:
        fin = sumar_meses(desde, 12 * cantidad)
    return calendario.siguiente_habil(fin)


def dias_habiles_entre(desde: date, hasta: date, calendario: Calendario) -> int:
    """Hábiles days after ``desde`` up to and including ``hasta`` (what is left of a
    plazo seen on ``desde``); negative when ``hasta`` is already past."""
    if hasta < desde:
        return -dias_habiles_entre(hasta, desde, calendario)
    dias, dia = 0, desde
    while dia < hasta:
        dia += timedelta(days=1)
        if calendario.es_habil(dia):
            dias += 1
    return dias


def dia_de_computo(instante: datetime, ine: str, calendario: Calendario) -> date:
    """The day a plazo counts from for something that happened at ``instante``: the
    council's local date (art. 31.1: the official date and time of the sede), and, for a
    presentation on an inhábil day, the first hábil day after it (art. 31.2.b)."""
    local = instante.astimezone(tenant_timezone(ine)).date()
    return calendario.siguiente_habil(local)
