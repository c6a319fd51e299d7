"""The libro de registro: a book (entrada or salida) over a date range, as CSV or as PDF.

Staff and auditors ask for the register of a period as a file: a CSV to work on in a
spreadsheet, a PDF to file or print. This module holds the pure rules (the range, how an
asiento becomes a row) and writes the CSV; ``pdf.py`` sets the PDF. No I/O: the export
job in ``service.py`` only feeds them asientos.

The CSV is UTF-8 with a byte order mark and ``;`` as separator, so a spreadsheet
application in a Spanish locale opens it with accents and columns right; fields are
quoted only when they need it (RFC 4180 quoting, CRLF line ends).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from services.registro.asientos.domain import EstadoAsiento
from services.registro.domain import TipoAsiento

if TYPE_CHECKING:  # the REST model is only a type here: the rules stay free of pydantic
    from services.registro.asientos.schemas import AsientoRead

__all__ = [
    "BOM",
    "CABECERA",
    "Formato",
    "csv_cabecera",
    "csv_filas",
    "fila",
    "instantes",
    "nombre_fichero",
    "porcentaje",
    "un_anio_despues",
    "validate_rango",
]

# Spreadsheet applications read a CSV without it as their legacy code page (accents break).
BOM = "\ufeff"
# Spanish-locale spreadsheets split on ";" (the "," is the decimal separator there).
DELIMITER = ";"
CABECERA = (
    "Número",
    "Fecha y hora",
    "Tipo",
    "Resumen",
    "Unidad de destino",
    "Procedimiento",
    "Interesados",
    "Estado",
    "Anulado en",
    "Motivo de anulación",
    "Oficina",
    "Canal",
    "Registro de origen",
    "Corrige",
    "Anexos",
)


class Formato(StrEnum):
    """The file an export produces."""

    CSV = "csv"
    PDF = "pdf"

    @property
    def media_type(self) -> str:
        return "text/csv; charset=utf-8" if self is Formato.CSV else "application/pdf"


def un_anio_despues(desde: date) -> date:
    """The same day a year later; from 29 February, 28 February (as PostgreSQL counts)."""
    try:
        return desde.replace(year=desde.year + 1)
    except ValueError:
        return desde.replace(year=desde.year + 1, day=28)


def validate_rango(desde: date, hasta: date) -> None:
    """A range [desde, hasta) of at least one day and at most one year; ValueError if not.

    The cap keeps one export to what one process renders in reasonable time; a longer
    period is several exports.
    """
    if hasta <= desde:
        raise ValueError("hasta debe ser posterior a desde (hasta no se incluye)")
    if hasta > un_anio_despues(desde):
        raise ValueError("el periodo no puede pasar de un año")


def instantes(desde: date, hasta: date, zona: ZoneInfo) -> tuple[datetime, datetime]:
    """The range's instants: each date is the entity's local midnight (Canarias its own)."""
    return datetime.combine(desde, time(), tzinfo=zona), datetime.combine(
        hasta, time(), tzinfo=zona
    )


def porcentaje(hechos: int, total: int | None) -> int:
    """How far an export is, 0 to 100; an empty book is done as soon as it is counted."""
    if total is None:
        return 0
    if total == 0:
        return 100
    return min(100, hechos * 100 // total)


def nombre_fichero(tipo: TipoAsiento, formato: Formato, desde: date, hasta: date) -> str:
    """E.g. ``libro-entrada-2026-01-01-2027-01-01.csv`` (hasta exclusive, as requested)."""
    return f"libro-{tipo.value}-{desde.isoformat()}-{hasta.isoformat()}.{formato.value}"


def instante_local(instante: datetime, zona: ZoneInfo) -> str:
    return f"{instante.astimezone(zona):%d/%m/%Y %H:%M:%S}"


def nombres_interesados(asiento: AsientoRead) -> str:
    return "; ".join(f"{i.nombre_completo()} ({i.identificador})" for i in asiento.interesados)


def _tipo(tipo: TipoAsiento) -> str:
    return "Entrada" if tipo is TipoAsiento.ENTRADA else "Salida"


def fila(asiento: AsientoRead, zona: ZoneInfo) -> list[str]:
    """One asiento as a CSV row, in CABECERA's order; dates in the entity's local time."""
    anulacion = asiento.anulacion
    return [
        asiento.numero,
        instante_local(asiento.fecha_registro, zona),
        _tipo(asiento.tipo),
        asiento.resumen,
        asiento.unidad_destino,
        asiento.procedimiento or "",
        nombres_interesados(asiento),
        "Anulado" if asiento.estado is EstadoAsiento.ANULADO else "Registrado",
        instante_local(anulacion.anulado_en, zona) if anulacion is not None else "",
        anulacion.motivo if anulacion is not None else "",
        asiento.oficina or "",
        "Electrónico" if asiento.canal.value == "electronico" else "Presencial",
        _origen(asiento),
        asiento.corrige or "",
        str(len(asiento.anexos)),
    ]


def _origen(asiento: AsientoRead) -> str:
    """Where an asiento was first registered, for one that came from another register."""
    origen = asiento.origen
    if origen is None or origen.numero_registro is None:
        return ""
    return f"{origen.numero_registro} ({origen.entidad_registral or '?'})"


def _write(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=DELIMITER, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
    )
    writer.writerows(rows)
    return buffer.getvalue()


def csv_cabecera(zona: ZoneInfo) -> str:
    """The BOM and the header line; the date column names the time zone it is in."""
    cabecera = list(CABECERA)
    cabecera[1] = f"Fecha y hora ({zona.key})"
    return BOM + _write([cabecera])


def csv_filas(asientos: Iterable[AsientoRead], zona: ZoneInfo) -> str:
    """The CSV lines of a batch of asientos (the export writes batch after batch)."""
    return _write(fila(a, zona) for a in asientos)


class EstadoExportacion(StrEnum):
    """Where an export job stands."""

    PENDIENTE = "pendiente"  # created, its task not started yet
    EN_CURSO = "en_curso"  # reading the book
    TERMINADA = "terminada"  # the file is ready
    FALLIDA = "fallida"  # it stopped; ``error`` says why
