"""The justificante of an asiento: the receipt the register gives for every entry and exit.

Ley 39/2015 (art. 16.3) asks the register to hand out a receipt stating the number,
date and time of the asiento. This module renders it as an A4 PDF
with everything the asiento records (its rules are in ``domain.py``). It does no I/O
beyond reading the fonts shipped with the registro, so the same asiento always gives
the same bytes.

The bottom :data:`FOOTER_RESERVED_MM` of every page are left blank on purpose:
the repositorio stamps the CSV, the verification URL and its QR code there when
it issues the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout, XPos, YPos

from services.common.tenants import Tenant
from services.registro.asientos.schemas import AsientoRead, Interesado
from services.registro.domain import TipoAsiento
from services.registro.fuentes import Fuentes, fuentes_para
from services.registro.justificantes.domain import fecha_local

__all__ = [
    "FOOTER_RESERVED_MM",
    "render_justificante",
]

FOOTER_RESERVED_MM = 35.0


_FAMILY = "DejaVu"
_MARGIN_MM = 20.0
_LABEL_MM = 56.0
_GREY = (90, 90, 90)


def _apellidos(interesado: Interesado) -> str:
    return " ".join(p for p in (interesado.apellido1, interesado.apellido2) if p) or "—"


class _Justificante(FPDF):
    """An A4 page whose header repeats who issues it; the footer area stays blank."""

    def __init__(self, entidad: Tenant, numero: str, fuentes: Fuentes) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._entidad = entidad
        self._numero = numero
        fuentes.registrar_en(self, _FAMILY)
        self.set_margins(_MARGIN_MM, 16.0, _MARGIN_MM)
        # A page breaks before its text could reach the area the repositorio stamps.
        self.set_auto_page_break(True, margin=FOOTER_RESERVED_MM + 5.0)

    def header(self) -> None:
        """Entity, DIR3, register number and page on every page."""
        self.set_font(_FAMILY, "B", 12)
        self.cell(0, 6, self._entidad.nombre, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FAMILY, "", 9)
        self.set_text_color(*_GREY)
        self.cell(120, 5, f"Código DIR3: {self._entidad.dir3}", new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.cell(
            0,
            5,
            f"{self._numero} · página {self.page_no()} de {{nb}}",
            align="R",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_text_color(0, 0, 0)
        self.set_draw_color(*_GREY)
        self.line(_MARGIN_MM, self.get_y() + 2, self.w - _MARGIN_MM, self.get_y() + 2)
        self.ln(7)

    def footer(self) -> None:
        """Nothing: the bottom of every page belongs to the repositorio's CSV stamp."""


_CANALES = {"presencial": "Presencial, en oficina", "electronico": "Electrónico, por la sede"}
_DOCUMENTACION_FISICA = {
    "1": "Acompaña documentación física requerida",
    "2": "Acompaña documentación física complementaria",
    "3": "No acompaña documentación física",
}


def _datos(asiento: AsientoRead, entidad: Tenant) -> list[tuple[str, str]]:
    """The rows of the asiento's table: what it always has, then what it has this time."""
    tipo = "Entrada" if asiento.tipo is TipoAsiento.ENTRADA else "Salida"
    filas = [
        ("Número de registro", asiento.numero),
        ("Fecha y hora de registro", fecha_local(asiento.fecha_registro, entidad.ine_code)),
        ("Tipo de asiento", tipo),
        ("Canal", _CANALES[asiento.canal.value]),
        ("Resumen", asiento.resumen),
        ("Unidad de destino (DIR3)", asiento.unidad_destino),
        ("Procedimiento", asiento.procedimiento or "No se indicó ninguno"),
    ]
    origen = asiento.origen
    opcionales = [
        ("Oficina de registro (DIR3)", asiento.oficina),
        ("Entidad registral de origen", origen.entidad_registral if origen else None),
        ("Unidad de origen", origen.unidad_tramitacion if origen else None),
        ("Entidad registral de destino", asiento.entidad_registral_destino),
        ("Código de asunto", asiento.codigo_asunto),
        ("Referencia externa", asiento.referencia_externa),
        ("Número de expediente", asiento.numero_expediente),
        (
            "Transporte",
            f"{asiento.transporte.tipo.name.replace('_', ' ').lower()}"
            + (f", nº {asiento.transporte.numero}" if asiento.transporte.numero else "")
            if asiento.transporte
            else None,
        ),
        ("Expone", asiento.expone),
        ("Solicita", asiento.solicita),
        ("Observaciones", asiento.observaciones),
        ("Corrige el asiento", asiento.corrige),
    ]
    filas += [(nombre, valor) for nombre, valor in opcionales if valor]
    filas += [
        ("Documentación física", _DOCUMENTACION_FISICA[asiento.documentacion_fisica.value]),
        ("Registrado por", asiento.registrado_por),
        ("Identificador del asiento", asiento.id),
        ("Entidad", f"{entidad.nombre} (DIR3 {entidad.dir3})"),
    ]
    return filas


def _anexos(pdf: FPDF, asiento: AsientoRead) -> None:
    """The documents presented, each with its SHA-256: the receipt proves what came in
    (Ley 39/2015, art. 16.3, asks it to list them in a way that guarantees integrity)."""
    pdf.set_font(_FAMILY, "B", 12)
    pdf.cell(
        0, 8, f"Documentos anexados ({len(asiento.anexos)})", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    # Small enough that a 64-digit hash stays on one line, to be read or copied whole.
    pdf.set_font(_FAMILY, "", 7)
    headings = FontFace(family=_FAMILY, emphasis="BOLD", fill_color=(238, 238, 238))
    with pdf.table(
        col_widths=(42, 18, pdf.epw - 60),
        width=pdf.epw,
        headings_style=headings,
        text_align="LEFT",
        line_height=4.5,
        padding=1.2,
        repeat_headings=1,
    ) as table:
        cabecera = table.row()
        for titulo in ("Fichero", "Tamaño", "Huella SHA-256"):
            cabecera.cell(titulo)
        for anexo in asiento.anexos:
            row = table.row()
            row.cell(anexo.nombre)
            row.cell(f"{anexo.tamano:,} B".replace(",", ".") if anexo.tamano else "—")
            row.cell(anexo.sha256 or "sin contenido recibido")
    pdf.ln(6)


def _textos(asiento: AsientoRead, entidad: Tenant) -> Iterator[str]:
    """Every text the justificante may print, to choose fonts that have all its characters."""
    yield entidad.nombre
    pendientes: list[Any] = [asiento.model_dump(mode="json")]
    while pendientes:
        valor = pendientes.pop()
        if isinstance(valor, str):
            yield valor
        elif isinstance(valor, dict):
            pendientes.extend(valor.values())
        elif isinstance(valor, list):
            pendientes.extend(valor)


def render_justificante(asiento: AsientoRead, entidad: Tenant) -> bytes:
    """The justificante of ``asiento`` issued by ``entidad``, as PDF bytes.

    Deterministic: the document's dates are the asiento's, so rendering the same
    asiento twice gives the same bytes.
    """
    libro = "entrada" if asiento.tipo is TipoAsiento.ENTRADA else "salida"
    pdf = _Justificante(entidad, asiento.numero, fuentes_para(_textos(asiento, entidad)))
    pdf.set_creation_date(asiento.fecha_registro)
    pdf.set_title(f"Justificante de registro {asiento.numero}")
    pdf.set_subject(f"Justificante de registro de {libro} {asiento.numero}")
    pdf.set_author(entidad.nombre)
    pdf.set_creator("Consistorio · registro")
    pdf.set_keywords(f"justificante registro {libro} {asiento.numero}")
    pdf.set_lang("es-ES")
    pdf.alias_nb_pages()
    pdf.add_page()

    pdf.set_font(_FAMILY, "B", 16)
    pdf.multi_cell(
        0, 9, f"Justificante de registro de {libro}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font(_FAMILY, "", 10)
    pdf.multi_cell(
        0,
        5,
        f"El Registro Electrónico General de {entidad.nombre} hace constar que ha practicado "
        f"el asiento de {libro} que se describe a continuación (artículo 16 de la Ley 39/2015, "
        "de 1 de octubre, del Procedimiento Administrativo Común de las Administraciones "
        "Públicas).",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(4)

    label = FontFace(family=_FAMILY, emphasis="BOLD", fill_color=(238, 238, 238))
    with pdf.table(
        col_widths=(_LABEL_MM, pdf.epw - _LABEL_MM),
        width=pdf.epw,
        first_row_as_headings=False,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        text_align="LEFT",
        line_height=6,
        padding=1.5,
    ) as table:
        for nombre, valor in _datos(asiento, entidad):
            row = table.row()
            row.cell(nombre, style=label)
            row.cell(valor)
    pdf.ln(6)

    pdf.set_font(_FAMILY, "B", 12)
    pdf.cell(0, 8, f"Interesados ({len(asiento.interesados)})", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FAMILY, "", 10)
    headings = FontFace(family=_FAMILY, emphasis="BOLD", fill_color=(238, 238, 238))
    with pdf.table(
        col_widths=(26, 34, 50, pdf.epw - 110),
        width=pdf.epw,
        headings_style=headings,
        text_align="LEFT",
        line_height=5,
        padding=1.5,
        repeat_headings=1,
    ) as table:
        cabecera = table.row()
        for titulo in ("Tipo", "Identificador", "Nombre", "Apellidos"):
            cabecera.cell(titulo)
        for interesado in asiento.interesados:
            row = table.row()
            row.cell(interesado.tipo_identificador.value)
            row.cell(interesado.identificador)
            row.cell(interesado.razon_social or interesado.nombre or "—")
            row.cell(_apellidos(interesado))
    representados = [i for i in asiento.interesados if i.representante is not None]
    if representados:
        pdf.ln(2)
        pdf.set_font(_FAMILY, "", 9)
        for interesado in representados:
            assert interesado.representante is not None
            representante = interesado.representante
            pdf.multi_cell(
                0,
                4.5,
                f"{interesado.nombre_completo()} ({interesado.identificador}) actúa representado "
                f"por {representante.nombre_completo()} ({representante.identificador}).",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
    pdf.ln(6)
    if asiento.anexos:
        _anexos(pdf, asiento)

    pdf.set_font(_FAMILY, "", 9)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(
        0,
        4.5,
        "La fecha y hora de registro son las oficiales de la sede de la entidad y determinan "
        "el cómputo de plazos. La autenticidad de este justificante puede comprobarse con el "
        "código seguro de verificación (CSV) que figura al pie de cada página.",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    return bytes(pdf.output())
