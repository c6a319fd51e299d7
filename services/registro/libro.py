"""The libro de registro: a book (entrada or salida) over a date range, as CSV or as PDF.

Staff and auditors ask for the register of a period as a file: a CSV to work on in a
spreadsheet, a PDF to file or print. This module holds the pure rules (the range, how an
asiento becomes a row) and renders both formats; it does no I/O beyond reading the fonts
shipped beside it, so the export job in exportaciones.py only feeds it asientos.

The CSV is UTF-8 with a byte order mark and ``;`` as separator, so a spreadsheet
application in a Spanish locale opens it with accents and columns right; fields are
quoted only when they need it (RFC 4180 quoting, CRLF line ends).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout, XPos, YPos

from services.common.tenants import Tenant
from services.common.timezones import tenant_timezone
from services.registro.busqueda import EstadoAsiento
from services.registro.domain import TipoAsiento
from services.registro.schemas import AsientoRead

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
    "render_libro",
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

_FONTS = Path(__file__).resolve().parent / "fonts"
_FAMILY = "DejaVu"
_MARGIN_MM = 12.0
_GREY = (90, 90, 90)
# Landscape A4 leaves 273 mm between the margins; the widths add up to that.
_COLUMNS: tuple[tuple[str, float], ...] = (
    ("Número", 27.0),
    ("Fecha y hora", 33.0),
    ("Resumen", 72.0),
    ("Unidad", 21.0),
    ("Procedimiento", 26.0),
    ("Interesados", 58.0),
    ("Estado", 36.0),
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


def _local(instante: datetime, zona: ZoneInfo) -> str:
    return f"{instante.astimezone(zona):%d/%m/%Y %H:%M:%S}"


def _interesados(asiento: AsientoRead) -> str:
    return "; ".join(f"{i.nombre_completo()} ({i.identificador})" for i in asiento.interesados)


def _tipo(tipo: TipoAsiento) -> str:
    return "Entrada" if tipo is TipoAsiento.ENTRADA else "Salida"


def fila(asiento: AsientoRead, zona: ZoneInfo) -> list[str]:
    """One asiento as a CSV row, in CABECERA's order; dates in the entity's local time."""
    anulacion = asiento.anulacion
    return [
        asiento.numero,
        _local(asiento.fecha_registro, zona),
        _tipo(asiento.tipo),
        asiento.resumen,
        asiento.unidad_destino,
        asiento.procedimiento or "",
        _interesados(asiento),
        "Anulado" if asiento.estado is EstadoAsiento.ANULADO else "Registrado",
        _local(anulacion.anulado_en, zona) if anulacion is not None else "",
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


def _periodo(desde: date, hasta: date) -> str:
    ultimo = hasta - timedelta(days=1)
    return f"Del {desde:%d/%m/%Y} al {ultimo:%d/%m/%Y}, ambos incluidos"


class _Libro(FPDF):
    """Landscape A4 pages whose header names the book, the entity and the period."""

    def __init__(self, titulo: str, entidad: Tenant, periodo: str, zona: ZoneInfo) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self._titulo = titulo
        self._entidad = entidad
        self._periodo = periodo
        self._zona = zona
        self.add_font(_FAMILY, "", _FONTS / "DejaVuSans.ttf")
        self.add_font(_FAMILY, "B", _FONTS / "DejaVuSans-Bold.ttf")
        self.set_margins(_MARGIN_MM, 12.0, _MARGIN_MM)
        self.set_auto_page_break(True, margin=14.0)

    def header(self) -> None:
        """Title, entity and period on every page, so a loose page still says what it is."""
        self.set_font(_FAMILY, "B", 13)
        self.cell(0, 7, self._titulo, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FAMILY, "", 9)
        self.set_text_color(*_GREY)
        self.cell(
            0,
            5,
            f"{self._entidad.nombre} · DIR3 {self._entidad.dir3}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.cell(
            0,
            5,
            f"{self._periodo} · horas de {self._zona.key}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_text_color(0, 0, 0)
        self.ln(2)

    def footer(self) -> None:
        """The page number out of the total."""
        self.set_y(-10)
        self.set_font(_FAMILY, "", 8)
        self.set_text_color(*_GREY)
        self.cell(0, 5, f"Página {self.page_no()} de {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def _estado_pdf(asiento: AsientoRead, zona: ZoneInfo) -> str:
    anulacion = asiento.anulacion
    if anulacion is None:
        return "Registrado"
    return f"Anulado el {anulacion.anulado_en.astimezone(zona):%d/%m/%Y}: {anulacion.motivo}"


def render_libro(
    asientos: Sequence[AsientoRead],
    *,
    entidad: Tenant,
    tipo: TipoAsiento,
    desde: date,
    hasta: date,
    generado_en: datetime,
) -> bytes:
    """The book of ``tipo`` for [desde, hasta) as PDF bytes, asientos in the order given.

    Deterministic for the same inputs: the creation date is ``generado_en``.
    """
    zona = tenant_timezone(entidad.ine_code)
    titulo = f"Libro de registro de {tipo.value}"
    pdf = _Libro(titulo, entidad, _periodo(desde, hasta), zona)
    pdf.set_creation_date(generado_en)
    pdf.set_title(f"{titulo} · {_periodo(desde, hasta)}")
    pdf.set_author(entidad.nombre)
    pdf.set_creator("Consistorio · registro")
    pdf.set_lang("es-ES")
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font(_FAMILY, "", 7.5)
    if not asientos:
        pdf.cell(0, 8, "No hay asientos en el periodo.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return bytes(pdf.output())
    headings = FontFace(family=_FAMILY, emphasis="BOLD", fill_color=(238, 238, 238))
    with pdf.table(
        col_widths=tuple(width for _, width in _COLUMNS),
        width=pdf.epw,
        headings_style=headings,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        text_align="LEFT",
        line_height=3.8,
        padding=1.0,
        repeat_headings=1,
    ) as table:
        cabecera = table.row()
        for nombre, _ in _COLUMNS:
            cabecera.cell(nombre)
        for asiento in asientos:
            row = table.row()
            row.cell(asiento.numero)
            row.cell(_local(asiento.fecha_registro, zona))
            row.cell(asiento.resumen)
            row.cell(asiento.unidad_destino)
            row.cell(asiento.procedimiento or "—")
            row.cell(_interesados(asiento))
            row.cell(_estado_pdf(asiento, zona))
    pdf.ln(3)
    pdf.set_font(_FAMILY, "", 8)
    pdf.cell(0, 5, f"Total: {len(asientos)} asientos.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
