"""The postal notification and acuse PDF: poppler reads its text, and the barcode,
rasterised by poppler at 300 dpi, decodes (Code 39, read here from the pixels) to the id."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from services.notificaciones.impresos import impreso_postal
from services.notificaciones.schemas import NotificacionRead
from tests.support.servers import require_tool

# Code 39 (ISO/IEC 16388): each character is 5 bars and 4 spaces, 3 of them wide.
_CODE39 = {
    "nnnwwnwnn": "0", "wnnwnnnnw": "1", "nnwwnnnnw": "2", "wnwwnnnnn": "3",
    "nnnwwnnnw": "4", "wnnwwnnnn": "5", "nnwwwnnnn": "6", "nnnwnnwnw": "7",
    "wnnwnnwnn": "8", "nnwwnnwnn": "9", "wnnnnwnnw": "A", "nnwnnwnnw": "B",
    "wnwnnwnnn": "C", "nnnnwwnnw": "D", "wnnnwwnnn": "E", "nnwnwwnnn": "F",
    "nwnnwnwnn": "*",
}  # fmt: skip


def notificacion() -> NotificacionRead:
    return NotificacionRead.model_validate(
        {
            "id": str(uuid.uuid4()),
            "estado": "en_reparto",
            "canal": "postal",
            "documento": {"documento_id": str(uuid.uuid4()), "version": 1, "nombre": "r.pdf"},
            "expediente_id": "EXP/2026/000017",
            "concepto": "Resolución de licencia de obra menor",
            "emisor": "Ajuntament de València",
            "interesado": {
                "tipo_identificador": "NIF",
                "identificador": "12345678Z",
                "nombre": "Núria Puig i Martí",
                "direccion_postal": {
                    "direccion": "Carrer de la Pau 7, 3a",
                    "codigo_postal": "46002",
                    "municipio": "València",
                    "provincia": "València",
                },
            },
            "origen": "api",
            "creada_en": datetime(2026, 11, 2, tzinfo=UTC),
        }
    )


def _pixels(pgm: bytes) -> tuple[int, int, bytes]:
    """Width, height and the 8-bit grey pixels of a binary PGM (P5)."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while pgm[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while not pgm[end : end + 1].isspace():
            end += 1
        fields.append(pgm[pos:end])
        pos = end
    assert fields[0] == b"P5"
    width, height = int(fields[1]), int(fields[2])
    return width, height, pgm[pos + 1 :]


def _decode_code39(row: bytes) -> str:
    """Reads one pixel row through a Code 39 symbol."""
    dark = [p < 128 for p in row]
    first = dark.index(True)
    last = len(dark) - 1 - dark[::-1].index(True)
    runs: list[int] = []
    current, length = dark[first], 0
    for value in dark[first : last + 1]:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    runs.append(length)
    narrow = min(runs)
    text = ""
    for start in range(0, len(runs), 10):  # 9 elements and the gap between characters
        pattern = "".join("w" if r > 2 * narrow else "n" for r in runs[start : start + 9])
        text += _CODE39[pattern]
    return text


def test_the_postal_pdf_has_both_pages_the_addressee_and_a_readable_barcode(
    tmp_path: Path,
) -> None:
    pdftotext = require_tool("pdftotext", "poppler-utils")
    pdftoppm = require_tool("pdftoppm", "poppler-utils")
    n = notificacion()
    pdf = tmp_path / "impreso.pdf"
    pdf.write_bytes(impreso_postal(n))
    text = subprocess.run(
        [pdftotext, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = text.split("\f")
    assert "NOTIFICACIÓN" in pages[0] and "ACUSE DE RECIBO" in pages[1]
    for texto in pages[:2]:
        assert "Núria Puig i Martí" in texto
        assert "46002 València" in texto
        assert n.id in texto
    assert "Resolución de licencia de obra menor" in pages[0]
    assert "Segundo intento" in pages[1]
    for numero in (1, 2):
        subprocess.run(
            [
                pdftoppm,
                "-gray",
                "-r",
                "300",
                "-f",
                str(numero),
                "-l",
                str(numero),
                str(pdf),
                str(tmp_path / f"p{numero}"),
            ],
            check=True,
        )
        [image] = tmp_path.glob(f"p{numero}*.pgm")
        width, _, pixels = _pixels(image.read_bytes())
        y = round(257 / 25.4 * 300)  # through the middle of the bars
        row = pixels[y * width : (y + 1) * width]
        assert _decode_code39(row) == "*" + n.id.replace("-", "").upper() + "*"
