"""Documents of an expediente: filling a procedure's template and laying it out as a PDF.
Pure: text in, bytes out (the caller runs the layout off the event loop)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from fpdf import FPDF

__all__ = ["nombre_fichero", "rellenar", "renderizar_pdf", "valores_de"]

_CAMPO = re.compile(r"\{([a-z_]+)\}")
_RECURSOS = {
    "alzada": "recurso de alzada en el plazo de un mes (art. 122 de la Ley 39/2015)",
    "reposicion": "recurso potestativo de reposición en el plazo de un mes (art. 124)",
    "extraordinario-revision": "recurso extraordinario de revisión (art. 125)",
    "contencioso-administrativo": "recurso contencioso-administrativo en el plazo de dos meses "
    "(art. 46 de la Ley 29/1998)",
}
_UNIDADES = {
    "dias_habiles": "días hábiles",
    "dias_naturales": "días naturales",
    "meses": "meses",
    "anios": "años",
}


def rellenar(texto: str, valores: Mapping[str, str]) -> str:
    """Replaces ``{campo}`` by its value; unknown fields become empty, and nothing but
    plain names is interpreted (a template cannot reach attributes or code)."""
    return _CAMPO.sub(lambda m: valores.get(m.group(1), ""), texto).strip()


def valores_de(
    expediente: Mapping[str, Any],
    definicion: Mapping[str, Any],
    datos: Mapping[str, Any],
    *,
    municipio: str,
    fecha: date,
) -> dict[str, str]:
    """The fields a template may use, from the expediente and the action's data."""
    interesados = expediente.get("interesados") or [{}]
    primero = interesados[0]
    nombre = " ".join(
        str(p)
        for p in (primero.get("nombre"), primero.get("apellido1"), primero.get("apellido2"))
        if p
    )
    plazo = definicion["plazo_resolucion"]
    recursos = [_RECURSOS[r] for r in definicion.get("recursos", []) if r in _RECURSOS]
    return {
        "numero": str(expediente["numero"]),
        "procedimiento": str(definicion["nombre"]),
        "interesado": f"{nombre} ({primero.get('identificador', '')})" if nombre else "",
        "unidad": str(expediente.get("unidad") or ""),
        "municipio": municipio,
        "fecha": fecha.strftime("%d/%m/%Y"),
        "plazo_resolucion": f"{plazo['cantidad']} {_UNIDADES[plazo['unidad']]}",
        "silencio": str(definicion["silencio"]),
        "sentido": str(datos.get("sentido") or ""),
        "motivo": str(datos.get("motivo") or ""),
        "recursos": ("cabe " + "; o ".join(recursos) + ".")
        if recursos
        else "no cabe recurso en vía administrativa.",
    }


def nombre_fichero(plantilla: str, numero: str) -> str:
    """``resolucion-EXP-2026-000017.pdf``."""
    return f"{plantilla}-{numero.replace('/', '-')}.pdf"


def _latin1(text: str) -> str:
    # The PDF core fonts speak Latin-1, which covers Spanish; anything else is replaced.
    return text.encode("latin-1", errors="replace").decode("latin-1")


def renderizar_pdf(entidad: str, titulo: str, numero: str, cuerpo: str) -> bytes:
    """A one-document PDF: the council, the title, the expediente number and the text.

    Pure and top-level with plain arguments, so a document worker runs it (core fonts:
    nothing to load per process)."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"{titulo} {numero}"))
    pdf.set_author(_latin1(entidad))
    pdf.set_margins(25, 25, 25)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 7, _latin1(entidad), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 9, _latin1(titulo), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 6, _latin1(f"Expediente {numero}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, _latin1(cuerpo), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
