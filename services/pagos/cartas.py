"""The carta de pago and the justificante de pago as PDFs, before the repositorio issues them.

The carta de pago is what the obligado takes to the bank or pays by card: who
owes what and why, the due date, the Cuaderno 60 data and the barcode the
banks' readers take (GS1-128 of the modalidad 2 digits). The justificante de
pago proves the payment: the same liquidación, when and by which channel, and
the Redsys order or the bank's NRC.

Rendering is pure (no I/O), so the same data always give the same bytes. The
bottom :data:`PIE_RESERVADO_MM` of the page stay blank: the repositorio stamps the
CSV, the verification URL and its QR code there when it issues the document.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import barcode
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from services.pagos.schemas import LiquidacionRead

__all__ = [
    "PIE_RESERVADO_MM",
    "SOLICITANTE",
    "Tipo",
    "modulos_gs1_128",
    "nombre_fichero",
    "render_carta_de_pago",
    "render_justificante_pago",
    "solicitud_id",
    "tipo_documental",
]

SOLICITANTE = "pagos"
PIE_RESERVADO_MM = 35.0
_MADRID = ZoneInfo("Europe/Madrid")
# Fixed, so a redelivered event asks for the same document with the same id.
_SOLICITUDES = uuid.uuid5(uuid.NAMESPACE_URL, "https://consistorio.es/pagos/documentos")
_ASCII = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "€": "EUR"})
_MODULO_MM = 0.33  # the narrowest bar: readable by every bank's scanner at 0.33 mm


class Tipo:
    """The documents pagos issues for a liquidación."""

    CARTA_DE_PAGO = "carta_de_pago"
    JUSTIFICANTE_PAGO = "justificante_pago"


# ENI TipoDocumental: the carta de pago notifies a liquidación (TD07 notificación); the
# justificante acknowledges a payment received (TD09 acuse de recibo).
_TIPOS_DOCUMENTALES = {Tipo.CARTA_DE_PAGO: "TD07", Tipo.JUSTIFICANTE_PAGO: "TD09"}


def tipo_documental(tipo: str) -> str:
    """The ENI document type of each of pagos' documents."""
    return _TIPOS_DOCUMENTALES[tipo]


def solicitud_id(liquidacion_id: str, tipo: str) -> str:
    """The stable id of the request to issue one document of a liquidación."""
    return str(uuid.uuid5(_SOLICITUDES, f"{liquidacion_id}/{tipo}"))


def nombre_fichero(liquidacion: LiquidacionRead, tipo: str) -> str:
    """``carta-de-pago-2026-00000042.pdf`` or ``justificante-pago-2026-00000042.pdf``."""
    prefijo = "carta-de-pago" if tipo == Tipo.CARTA_DE_PAGO else "justificante-pago"
    return f"{prefijo}-{liquidacion.numero.replace('/', '-')}.pdf"


def modulos_gs1_128(digitos: str) -> str:
    """The bars and spaces (``1``/``0`` per module) of the GS1-128 symbol of ``digitos``.

    ``digitos`` begins with the application identifier ``90``; python-barcode adds the
    FNC1 that makes Code 128 a GS1-128, the check symbol and the stop pattern.
    """
    if not digitos.isdigit():
        raise ValueError("un código de Cuaderno 60 son solo dígitos")
    simbolo = barcode.get("gs1_128", digitos)
    modulos: str = simbolo.build()[0]
    return modulos


def _texto(valor: Any) -> str:
    """Text the PDF's core font can draw (Latin-1, which has every Spanish letter).

    Typographic dashes and quotes become their ASCII forms; anything else, '?'.
    """
    texto = str(valor).translate(_ASCII)
    return texto.encode("latin-1", "replace").decode("latin-1")


def _pdf(titulo: str, entidad: str) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=PIE_RESERVADO_MM)
    pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=_MADRID))
    pdf.set_title(titulo)
    pdf.set_author(_texto(entidad))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 9, _texto(entidad), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 8, _texto(titulo), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    return pdf


def _fila(pdf: FPDF, etiqueta: str, valor: Any) -> None:
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(55, 7, _texto(etiqueta))
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 7, _texto(valor), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _obligado(liquidacion: LiquidacionRead) -> str:
    o = liquidacion.obligado
    nombre = " ".join(p for p in (o.nombre, o.apellido1, o.apellido2) if p)
    return f"{nombre} ({o.tipo_identificador} {o.identificador})"


def _euros(importe: str) -> str:
    entero, _, cent = importe.partition(".")
    miles = f"{int(entero):,}".replace(",", ".")
    return f"{miles},{cent or '00'} EUR"


def render_carta_de_pago(liquidacion: LiquidacionRead, entidad: str) -> bytes:
    """The carta de pago of a liquidación, with the Cuaderno 60 data and barcode."""
    pdf = _pdf("Carta de pago", entidad)
    c60 = liquidacion.cuaderno60
    for etiqueta, valor in (
        ("Liquidación", liquidacion.numero),
        ("Concepto", liquidacion.concepto),
        ("Obligado al pago", _obligado(liquidacion)),
        ("Importe", _euros(liquidacion.importe)),
        ("Fecha límite de pago", liquidacion.vencimiento.strftime("%d/%m/%Y")),
        ("Emisora", c60.emisora),
        ("Referencia", c60.referencia),
        ("Identificación", c60.identificacion),
        ("Modalidad", f"Cuaderno 60, modalidad {c60.modalidad}"),
    ):
        _fila(pdf, etiqueta, valor)
    pdf.ln(6)
    modulos = modulos_gs1_128(c60.codigo_barras)
    x0, y0, alto = pdf.l_margin, pdf.get_y(), 18.0
    pdf.set_fill_color(0, 0, 0)
    inicio = None
    for i, modulo in enumerate(modulos + "0"):
        if modulo == "1" and inicio is None:
            inicio = i
        elif modulo == "0" and inicio is not None:
            pdf.rect(x0 + inicio * _MODULO_MM, y0, (i - inicio) * _MODULO_MM, alto, style="F")
            inicio = None
    pdf.set_y(y0 + alto + 1)
    pdf.set_font("Courier", "", 9)
    pdf.cell(0, 5, f"({c60.codigo_barras[:2]}){c60.codigo_barras[2:]}")
    pdf.ln(9)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        5,
        _texto(
            "Puede pagar en cualquier entidad colaboradora con esta carta de pago, o con "
            "tarjeta en la sede electrónica. Conserve el justificante."
        ),
    )
    return bytes(pdf.output())


def render_justificante_pago(
    liquidacion: LiquidacionRead, entidad: str, pagada_at: datetime
) -> bytes:
    """The proof that a liquidación was paid: when, how much, by which channel."""
    pdf = _pdf("Justificante de pago", entidad)
    canal = {"tarjeta": "Tarjeta (Redsys)", "cuaderno60": "Entidad colaboradora (Cuaderno 60)"}
    prueba = "Número de pedido" if liquidacion.canal == "tarjeta" else "NRC"
    for etiqueta, valor in (
        ("Liquidación", liquidacion.numero),
        ("Concepto", liquidacion.concepto),
        ("Obligado al pago", _obligado(liquidacion)),
        ("Importe pagado", _euros(liquidacion.importe)),
        ("Pagado el", pagada_at.astimezone(_MADRID).strftime("%d/%m/%Y %H:%M")),
        ("Canal", canal.get(liquidacion.canal or "", liquidacion.canal or "")),
        (prueba, liquidacion.justificante_pago or ""),
        ("Referencia (Cuaderno 60)", f"{liquidacion.emisora} {liquidacion.referencia}"),
    ):
        _fila(pdf, etiqueta, valor)
    return bytes(pdf.output())
