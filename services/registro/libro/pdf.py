"""The libro de registro as a PDF: a landscape A4 table, set in the fonts the registro ships."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout, XPos, YPos

from services.common.tenants import Tenant
from services.common.timezones import tenant_timezone
from services.registro.asientos.schemas import AsientoRead
from services.registro.domain import TipoAsiento
from services.registro.fuentes import DIRECTORIO
from services.registro.libro.domain import instante_local, nombres_interesados

_FONTS = DIRECTORIO


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
            row.cell(instante_local(asiento.fecha_registro, zona))
            row.cell(asiento.resumen)
            row.cell(asiento.unidad_destino)
            row.cell(asiento.procedimiento or "—")
            row.cell(nombres_interesados(asiento))
            row.cell(_estado_pdf(asiento, zona))
    pdf.ln(3)
    pdf.set_font(_FAMILY, "", 8)
    pdf.cell(0, 5, f"Total: {len(asientos)} asientos.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
