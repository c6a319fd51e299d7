"""The printable postal notification and its acuse de recibo (art. 42), as one PDF.

Page 1 is the notification the postal operator delivers: the entity, the
addressee's block, what is notified and the notification's id as a Code 39
barcode. Page 2 is the acuse de recibo the operator fills in and returns: the
same addressee block and barcode (so returned acuses are scanned back to their
notification), and boxes for the two attempts of art. 42.2 and the receiver's
name, NIF and signature. Pure and CPU-bound: callers run it off the event loop.
"""

from __future__ import annotations

from fpdf import FPDF

from services.notificaciones.schemas import NotificacionRead

__all__ = ["codigo_barras", "impreso_postal", "latin1"]

_ANCHO_ESTRECHO = 0.25  # mm: at 300 dpi about three pixels, what postal scanners read


def codigo_barras(notificacion_id: str) -> str:
    """The Code 39 text of a notification id: its 32 hex digits, upper case, between '*'."""
    return "*" + notificacion_id.replace("-", "").upper() + "*"


def latin1(texto: str) -> str:
    """The core PDF fonts speak Latin-1, which covers Spanish and Valencian."""
    return texto.encode("latin-1", "replace").decode("latin-1")


def _bloque_destinatario(pdf: FPDF, n: NotificacionRead) -> None:
    i = n.interesado
    direccion = i.direccion_postal
    lineas = [i.nombre, f"{i.tipo_identificador} {i.identificador}"]
    if direccion is not None:
        lineas += [
            direccion.direccion,
            f"{direccion.codigo_postal} {direccion.municipio}",
            direccion.provincia,
        ]
    pdf.set_font("helvetica", "B", 11)
    pdf.set_xy(110, 45)
    pdf.cell(90, 6, "DESTINATARIO", new_x="LEFT", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    for linea in lineas:
        pdf.cell(90, 6, latin1(linea), new_x="LEFT", new_y="NEXT")


def _barras(pdf: FPDF, n: NotificacionRead, y: float) -> None:
    pdf.set_fill_color(0)
    pdf.code39(codigo_barras(n.id), x=20, y=y, w=3 * _ANCHO_ESTRECHO, h=14)
    pdf.set_font("courier", "", 9)
    pdf.set_xy(20, y + 15)
    pdf.cell(0, 5, latin1(f"Notificación {n.id}"))


def _cabecera(pdf: FPDF, n: NotificacionRead, titulo: str) -> None:
    pdf.set_font("helvetica", "B", 14)
    pdf.set_xy(20, 20)
    pdf.cell(0, 8, latin1(n.emisor), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "B", 12)
    pdf.set_x(20)
    pdf.cell(0, 8, latin1(titulo))


def impreso_postal(n: NotificacionRead) -> bytes:
    """The two-page PDF (notification, acuse de recibo) of a postal notification.

    Top-level with a plain (picklable) argument, so a document worker runs it."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(20, 20, 20)

    pdf.add_page()
    _cabecera(pdf, n, "NOTIFICACIÓN")
    _bloque_destinatario(pdf, n)
    pdf.set_xy(20, 95)
    pdf.set_font("helvetica", "", 11)
    texto = (
        f"Concepto: {n.concepto}\n"
        f"Expediente: {n.expediente_id or '-'}\n"
        f"Documento: {n.documento.nombre or n.documento.documento_id} "
        f"(versión {n.documento.version or 1})\n\n"
        "Se le notifica el acto que consta en el documento indicado, que se acompaña. Esta "
        "notificación se practica por medios no electrónicos (art. 42 de la Ley 39/2015). Si "
        "nadie puede hacerse cargo de ella, se intentará de nuevo una sola vez en otra hora "
        "dentro de los tres días siguientes; si tampoco entonces, se publicará un anuncio en "
        "el Boletín Oficial del Estado (art. 44)."
    )
    pdf.multi_cell(170, 6, latin1(texto))
    _barras(pdf, n, 250)

    pdf.add_page()
    _cabecera(pdf, n, "ACUSE DE RECIBO")
    _bloque_destinatario(pdf, n)
    pdf.set_font("helvetica", "", 10)
    y = 100.0
    for titulo in ("Primer intento", "Segundo intento"):
        pdf.set_xy(20, y)
        pdf.set_font("helvetica", "B", 10)
        pdf.cell(0, 6, titulo)
        pdf.set_font("helvetica", "", 10)
        for k, campo in enumerate(("Fecha", "Hora", "Resultado")):
            pdf.rect(20 + k * 57, y + 7, 54, 12)
            pdf.set_xy(21 + k * 57, y + 7.5)
            pdf.cell(52, 4, campo)
        y += 26
    pdf.set_xy(20, y)
    pdf.set_font("helvetica", "B", 10)
    pdf.cell(0, 6, "Entregada a")
    pdf.set_font("helvetica", "", 10)
    for k, campo in enumerate(("Nombre y apellidos", "NIF", "Relación con el destinatario")):
        pdf.rect(20 + k * 57, y + 7, 54, 12)
        pdf.set_xy(21 + k * 57, y + 7.5)
        pdf.cell(52, 4, latin1(campo))
    pdf.rect(20, y + 24, 168, 25)
    pdf.set_xy(21, y + 24.5)
    pdf.cell(0, 4, "Firma del receptor y del empleado postal")
    _barras(pdf, n, 250)
    return bytes(pdf.output())
