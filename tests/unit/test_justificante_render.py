"""The justificante PDF: it parses, says everything the asiento records (accents included),
keeps the footer free for the CSV stamp, names its time zone, and is byte-for-byte stable.

The text is read back from the PDF itself: the justificante is set in subset TrueType
fonts with Identity-H encoding, so the small reader below maps glyph codes back to
Unicode through each font's ToUnicode map, and keeps where each run of text was drawn.
Independent readers check it too: poppler's pdftotext and pdffonts, fontTools for the
embedded font programs, and the repositorio's CSV stamp over the result.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fontTools import ttLib
from pyhanko.pdf_utils.reader import PdfFileReader

from services.common.tenants import Tenant
from services.registro import fuentes
from services.registro.anexos.domain import TipoDocumentoAnexo
from services.registro.anexos.schemas import AnexoRead
from services.registro.asientos.schemas import AsientoRead, Interesado
from services.registro.domain import TipoIdentificador
from services.registro.justificantes.domain import (
    TIPO_DOCUMENTAL,
    fecha_local,
    nombre_fichero,
    solicitud_id,
)
from services.registro.justificantes.pdf import FOOTER_RESERVED_MM, render_justificante
from services.repositorio.emision.stamping import stamp_csv
from tests.support.servers import require_tool

VALENCIA = Tenant("46250", "Ajuntament de València", "L01462508")
LAS_PALMAS = Tenant("35016", "Ayuntamiento de Las Palmas de Gran Canaria", "L01350167")
_PT_PER_MM = 72 / 25.4
_A4_PT = (595.28, 841.89)


def asiento(**overrides: Any) -> AsientoRead:
    data: dict[str, Any] = {
        "id": "6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77",
        "numero": "E/2026/000001",
        "tipo": "entrada",
        "anio": 2026,
        "secuencia": 1,
        "fecha_registro": datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        "resumen": "Sol·licitud de llicència d'obra menor a la façana",
        "unidad_destino": "L01462508",
        "procedimiento": "generico",
        "interesados": [
            {
                "tipo_identificador": "NIF",
                "identificador": "12345678Z",
                "nombre": "Lucía",
                "apellido1": "Núñez",
                "apellido2": "Peña",
            },
            {
                "tipo_identificador": "NIE",
                "identificador": "X1234567L",
                "nombre": "Françoise",
                "apellido1": "Çelik",
            },
            {"tipo_identificador": "CIF", "identificador": "B12345674", "nombre": "Obres SL"},
        ],
        "registrado_por": "jordi.puig",
    }
    data.update(overrides)
    return AsientoRead.model_validate(data)


# --- a small reader of what the justificante draws -----------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run of text as drawn: its page, its baseline position (points) and its text."""

    page: int
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Drawn:
    """Everything on the pages: text runs, and the lowest y any text, line or box reaches."""

    pages: int
    runs: list[Run]
    lowest_y: float

    def page_text(self, page: int) -> str:
        return "\n".join(r.text for r in self.runs if r.page == page)

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.runs)


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
_REGULAR = rb"[^\s()<>\[\]{}/%]+"


def _literal(data: bytes, i: int) -> tuple[bytes, int]:
    out = bytearray()
    depth = 1
    i += 1
    while True:
        c = data[i]
        if c == 0x5C:  # backslash
            n = data[i + 1]
            octal = re.match(rb"[0-7]{1,3}", data[i + 1 : i + 4])
            if n in _ESCAPES:
                out += _ESCAPES[n]
                i += 2
            elif octal:
                out.append(int(octal.group(), 8) & 0xFF)
                i += 1 + len(octal.group())
            elif n in (0x0A, 0x0D):
                i += 2
            else:
                out.append(n)
                i += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
        out.append(c)
        i += 1


def _tokens(data: bytes) -> Iterator[tuple[str, Any]]:
    i = 0
    while i < len(data):
        c = data[i]
        if c in b" \t\r\n\f\x00":
            i += 1
        elif c == 0x28:
            text, i = _literal(data, i)
            yield "value", text
        elif c == 0x3C:
            end = data.index(b">", i)
            yield "value", bytes.fromhex(data[i + 1 : end].decode())
            i = end + 1
        elif c in b"[]":
            yield chr(c), None
            i += 1
        else:
            word = re.match(rb"/?" + _REGULAR, data[i:])
            assert word, data[i : i + 20]
            token = word.group()
            i += len(token)
            if token.startswith(b"/"):
                yield "value", token.decode()
            elif re.fullmatch(rb"[+-]?(\d+\.?\d*|\.\d+)", token):
                yield "value", float(token)
            else:
                yield "op", token.decode()


def _to_unicode(cmap: bytes) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    pair = rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>"
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(pair, block):
            out[bytes.fromhex(src.decode())] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(pair + rb"\s*<([0-9A-Fa-f]+)>", block):
            start, first = int(lo, 16), int(dst, 16)
            for code in range(start, int(hi, 16) + 1):
                out[code.to_bytes(2, "big")] = chr(first + code - start)
    return out


def read(pdf: bytes) -> Drawn:
    """Parses the PDF and reads back every text run and the lowest point anything reaches."""
    reader = PdfFileReader(BytesIO(pdf))
    kids = reader.root["/Pages"]["/Kids"]
    runs: list[Run] = []
    lowest = _A4_PT[1]
    for number, ref in enumerate(kids, start=1):
        page = ref.get_object()
        fonts = {
            name: _to_unicode(font.get_object()["/ToUnicode"].data)
            for name, font in page["/Resources"]["/Font"].items()
        }
        stack: list[Any] = []
        arrays: list[list[Any]] = []
        font = ""
        x = y = 0.0
        for kind, value in _tokens(page["/Contents"].data):
            if kind == "[":
                arrays.append([])
            elif kind == "]":
                done = arrays.pop()
                (arrays[-1] if arrays else stack).append(done)
            elif kind == "value":
                (arrays[-1] if arrays else stack).append(value)
            else:
                if value == "BT":
                    x = y = 0.0
                elif value == "Tf":
                    font = stack[-2]
                elif value == "Td":
                    x, y = x + stack[-2], y + stack[-1]
                elif value == "Tm":
                    x, y = stack[-2], stack[-1]
                elif value in ("Tj", "TJ"):
                    parts = [stack[-1]] if value == "Tj" else stack[-1]
                    codes = b"".join(p for p in parts if isinstance(p, bytes))
                    text = "".join(fonts[font][codes[k : k + 2]] for k in range(0, len(codes), 2))
                    runs.append(Run(number, x, y, text))
                    lowest = min(lowest, y)
                elif value in ("m", "l"):
                    lowest = min(lowest, stack[-1])
                elif value == "re":
                    lowest = min(lowest, stack[-3], stack[-3] + stack[-1])
                elif value == "cm":
                    raise AssertionError("a transformed drawing: positions would be wrong")
                stack.clear()
    return Drawn(pages=len(kids), runs=runs, lowest_y=lowest)


# --- the justificante --------------------------------------------------------------------------


def test_it_is_an_a4_pdf_named_after_the_asiento() -> None:
    pdf = render_justificante(asiento(), VALENCIA)
    assert pdf.startswith(b"%PDF-")
    reader = PdfFileReader(BytesIO(pdf))
    # Every page inherits its size from the page tree.
    box = [float(v) for v in reader.root["/Pages"]["/MediaBox"]]
    assert box[2:] == pytest.approx(_A4_PT, abs=0.5)
    info = reader.trailer["/Info"]
    assert info["/Title"] == "Justificante de registro E/2026/000001"
    assert info["/Author"] == "Ajuntament de València"
    assert info["/CreationDate"].startswith("D:20261123100000")


def test_it_states_everything_the_asiento_records() -> None:
    drawn = read(render_justificante(asiento(), VALENCIA))
    assert drawn.pages == 1
    lines = set(drawn.text.splitlines())
    for expected in (
        "Ajuntament de València",
        "Código DIR3: L01462508",
        "Justificante de registro de entrada",
        "E/2026/000001",
        "23/11/2026 11:00:00 (Europe/Madrid, CET, UTC+01:00)",
        "Entrada",
        "Sol·licitud de llicència d'obra menor a la façana",
        "L01462508",
        "generico",
        "jordi.puig",
        "6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77",
        # every interesado: tipo, identificador, nombre, apellidos
        "NIF",
        "12345678Z",
        "Lucía",
        "Núñez Peña",
        "NIE",
        "X1234567L",
        "Françoise",
        "Çelik",
        "CIF",
        "B12345674",
        "Obres SL",
    ):
        assert expected in lines, expected
    assert "Registrado por" in lines
    assert "Interesados (3)" in lines


def test_a_salida_says_so_and_a_missing_procedimiento_is_named() -> None:
    text = read(
        render_justificante(
            asiento(tipo="salida", numero="S/2026/000042", procedimiento=None), VALENCIA
        )
    ).text
    assert "Justificante de registro de salida" in text
    assert "Salida" in text.splitlines()
    assert "S/2026/000042" in text
    assert "No se indicó ninguno" in text
    assert "entrada" not in text


def test_canarias_shows_its_own_hour_and_names_the_zone() -> None:
    winter = read(render_justificante(asiento(), LAS_PALMAS)).text
    assert "23/11/2026 10:00:00 (Atlantic/Canary, WET, UTC+00:00)" in winter
    summer = asiento(fecha_registro=datetime(2026, 7, 1, 22, 30, tzinfo=UTC))
    assert (
        "01/07/2026 23:30:00 (Atlantic/Canary, WEST, UTC+01:00)"
        in read(render_justificante(summer, LAS_PALMAS)).text
    )
    # Past midnight in the Peninsula, still the same day in Canarias.
    assert (
        "02/07/2026 00:30:00 (Europe/Madrid, CEST, UTC+02:00)"
        in read(render_justificante(summer, VALENCIA)).text
    )


def test_the_footer_area_is_left_for_the_csv_stamp() -> None:
    reserved = FOOTER_RESERVED_MM * _PT_PER_MM
    one = read(render_justificante(asiento(), VALENCIA))
    assert one.lowest_y > reserved
    many = asiento(
        interesados=[
            {
                "tipo_identificador": "PASAPORTE",
                "identificador": f"PAS{n:05d}",
                "nombre": f"Interesada número {n}",
                "apellido1": "Muñoz",
            }
            for n in range(100)
        ]
    )
    drawn = read(render_justificante(many, VALENCIA))
    assert drawn.pages > 1
    assert drawn.lowest_y > reserved
    identifiers = {r.text for r in drawn.runs if r.text.startswith("PAS0")}
    assert identifiers == {f"PAS{n:05d}" for n in range(100)}
    for page in range(1, drawn.pages + 1):
        # Every page says whose it is, which asiento and which page of how many.
        text = drawn.page_text(page)
        assert "Ajuntament de València" in text
        assert f"E/2026/000001 · página {page} de {drawn.pages}" in text.splitlines()


def test_the_same_asiento_renders_the_same_bytes() -> None:
    first = render_justificante(asiento(), VALENCIA)
    assert render_justificante(asiento(), VALENCIA) == first
    assert render_justificante(asiento(resumen="Otra cosa"), VALENCIA) != first
    assert render_justificante(asiento(), LAS_PALMAS) != first


def test_naming_rules() -> None:
    assert nombre_fichero("E/2026/000001") == "justificante-E-2026-000001.pdf"
    assert nombre_fichero("S/2027/1234567") == "justificante-S-2027-1234567.pdf"
    asiento_id = str(uuid.uuid4())
    first = solicitud_id(asiento_id)
    assert uuid.UUID(first).version == 5
    assert solicitud_id(asiento_id, 1) == first
    assert solicitud_id(asiento_id, 2) not in (first, solicitud_id(asiento_id, 3))
    assert solicitud_id(str(uuid.uuid4())) != first
    with pytest.raises(ValueError):
        solicitud_id(asiento_id, 0)
    # ENI: "TD09 - Acuse de recibo", the receipt of what the register received or sent.
    assert TIPO_DOCUMENTAL == "TD09"


def test_a_naive_registration_time_is_refused() -> None:
    with pytest.raises(ValueError, match="zona horaria"):
        fecha_local(datetime(2026, 11, 23, 10, 0), "46250")


_HUELLA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _con_anexo(nombre: str, *, tamano: int) -> AsientoRead:
    """The test asiento with one presented document named ``nombre``."""
    anexo = AnexoRead(
        identificador_fichero="E_2026_000001_0001.pdf",
        documento_id="0195a3c4-1f0a-7d2e-8c55-6b3f1e9a7d20",
        version=1,
        nombre=nombre,
        tipo_mime="application/pdf",
        tamano=tamano,
        sha256=_HUELLA,
        tipo_documento=TipoDocumentoAnexo.DOCUMENTO_ADJUNTO,
    )
    return asiento().model_copy(update={"anexos": [anexo]})


def test_the_documents_presented_are_listed_with_their_hashes() -> None:
    huella = _HUELLA
    con_anexos = _con_anexo("plano.pdf", tamano=123456)
    lines = set(read(render_justificante(con_anexos, VALENCIA)).text.splitlines())
    assert "Documentos anexados (1)" in lines
    assert "plano.pdf" in lines
    assert "123.456 B" in lines
    assert huella in lines


def test_a_name_in_any_script_the_fonts_have_is_printed() -> None:
    otro = asiento().model_copy(
        update={
            "interesados": [
                Interesado(
                    tipo_identificador=TipoIdentificador.PASAPORTE,
                    identificador="AM1234567",
                    nombre="Արամ",
                )
            ]
        }
    )
    lines = set(read(render_justificante(otro, VALENCIA)).text.splitlines())
    assert "Արամ" in lines
    cirilico = asiento().model_copy(
        update={
            "interesados": [
                Interesado(
                    tipo_identificador=TipoIdentificador.PASAPORTE,
                    identificador="FA1234567",
                    nombre="Олена",
                )
            ]
        }
    )
    assert "Олена" in set(read(render_justificante(cirilico, VALENCIA)).text.splitlines())


def test_fonts_are_parsed_once_per_process_not_per_justificante() -> None:
    render_justificante(asiento(), VALENCIA)
    antes = fuentes.ESTADISTICAS.analisis
    for numero in range(3):
        pdf = render_justificante(asiento(numero=f"E/2026/00000{numero + 2}"), VALENCIA)
        assert f"E/2026/00000{numero + 2}" in read(pdf).text
    assert fuentes.ESTADISTICAS.analisis == antes


# --- read by independent tools ------------------------------------------------------------------

_EXPONE = " ".join(
    f"Punto {n}: que la vivienda de la calle Mayor presenta humedades y grietas." for n in range(60)
)[:4000]


def _poppler(tool: str, pdf: bytes, tmp_path: Path, *args: str) -> str:
    path = tmp_path / "justificante.pdf"
    path.write_bytes(pdf)
    binary = require_tool(tool, "poppler-utils")
    return subprocess.run(
        [binary, *args, str(path), *(["-"] if tool == "pdftotext" else [])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_poppler_reads_the_text_back(tmp_path: Path) -> None:
    text = _poppler("pdftotext", render_justificante(asiento(), VALENCIA), tmp_path, "-layout")
    for expected in (
        "Ajuntament de València",
        "Justificante de registro de entrada",
        "E/2026/000001 · página 1 de 1",
        "23/11/2026 11:00:00 (Europe/Madrid, CET, UTC+01:00)",
        "Sol·licitud de llicència d'obra menor a la façana",
        "Núñez Peña",
        "Françoise",
        "código seguro de verificación (CSV)",
    ):
        assert expected in text, expected


def test_pdffonts_lists_both_fonts_as_embedded_subsets_with_unicode_maps(tmp_path: Path) -> None:
    out = _poppler("pdffonts", render_justificante(asiento(), VALENCIA), tmp_path)
    fonts = [line.split() for line in out.splitlines()[2:]]
    assert sorted(re.sub(r"^[A-Z]{6}\+", "", f[0]) for f in fonts) == [
        "DejaVuSans",
        "DejaVuSans-Bold",
    ]
    for font in fonts:
        assert re.fullmatch(r"[A-Z]{6}\+DejaVuSans(-Bold)?", font[0])
        # type "CID TrueType", encoding Identity-H, then emb sub uni
        assert font[1:6] == ["CID", "TrueType", "Identity-H", "yes", "yes"], font
        assert font[6] == "yes", font


def test_each_font_program_holds_only_the_glyphs_used() -> None:
    reader = PdfFileReader(BytesIO(render_justificante(asiento(), VALENCIA)))
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    for font in page["/Resources"]["/Font"].values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        program = descendant["/FontDescriptor"]["/FontFile2"].data
        tt = ttLib.TTFont(BytesIO(program))
        glyphs = tt.getGlyphOrder()
        # DejaVu Sans has about 6,000 glyphs; a justificante uses well under 100 of each.
        assert 10 < len(glyphs) < 120
        widths = descendant["/W"][1]
        assert len(widths) <= len(glyphs)
        glyf = tt["glyf"]
        drawn = [g for g in glyphs[1 : len(widths)] if glyf[g].numberOfContours != 0]
        # Every glyph except the space has an outline that decodes.
        assert len(drawn) >= len(widths) - 3
        for name in drawn:
            glyf[name].expand(glyf)


def test_a_long_expone_and_solicita_flow_over_pages(tmp_path: Path) -> None:
    assert len(_EXPONE) == 4000
    pdf = render_justificante(asiento(expone=_EXPONE, solicita=_EXPONE), VALENCIA)
    drawn = read(pdf)
    assert drawn.pages >= 3
    assert drawn.lowest_y > FOOTER_RESERVED_MM * _PT_PER_MM
    text = _poppler("pdftotext", pdf, tmp_path)
    pages = text.split("\f")
    for number in range(1, drawn.pages + 1):
        assert f"E/2026/000001 · página {number} de {drawn.pages}" in pages[number - 1]
    # All of it, in order, with nothing lost at the line and page breaks: twice.
    header = ("Ajuntament de València", "Código DIR3: L01462508", "E/2026/000001 · página")
    body = [line for line in text.splitlines() if not line.startswith(header)]
    words = " ".join(" ".join(body).split())
    flowing = " ".join(_EXPONE.split())
    first = words.index(flowing)
    assert words.index(flowing, first + 1) > first
    assert "Solicita" in words[first + len(flowing) : words.index(flowing, first + 1)]
    assert "Jordi" not in words and "jordi.puig" in words


def test_greek_and_cyrillic_names_are_drawn_and_read_back(tmp_path: Path) -> None:
    otro = asiento(
        interesados=[
            {
                "tipo_identificador": "PASAPORTE",
                "identificador": "GR1234567",
                "nombre": "Νίκος",
                "apellido1": "Παπαδόπουλος",
            },
            {
                "tipo_identificador": "PASAPORTE",
                "identificador": "UA7654321",
                "nombre": "Олена",
                "apellido1": "Шевченко",
            },
        ],
        expone="Ζητώ την άδεια. Прошу надати дозвіл.",
    )
    pdf = render_justificante(otro, VALENCIA)
    lines = set(read(pdf).text.splitlines())
    assert {"Νίκος", "Παπαδόπουλος", "Олена", "Шевченко"} <= lines
    text = _poppler("pdftotext", pdf, tmp_path, "-layout")
    for expected in ("Νίκος", "Παπαδόπουλος", "Олена", "Шевченко", "Прошу надати дозвіл."):
        assert expected in text, expected
    # Drawn with the fonts' own glyphs, not the .notdef box: each has an outline of its own.
    reader = PdfFileReader(BytesIO(pdf))
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    regular = next(
        f.get_object()["/DescendantFonts"][0].get_object()
        for f in page["/Resources"]["/Font"].values()
        if not str(f.get_object()["/BaseFont"]).endswith("Bold")
    )
    tt = ttLib.TTFont(BytesIO(regular["/FontDescriptor"]["/FontFile2"].data))
    glyf = tt["glyf"]
    order = tt.getGlyphOrder()
    notdef = glyf[order[0]].compile(glyf)
    outlines = [glyf[g].compile(glyf) for g in order[1:] if glyf[g].numberOfContours != 0]
    assert notdef not in outlines


def test_the_repositorio_stamps_every_page_of_a_long_justificante(tmp_path: Path) -> None:
    pdf = render_justificante(asiento(expone=_EXPONE), VALENCIA)
    pages = read(pdf).pages
    csv = "ABCDEFGHJKLMNPQRSTUVWXYZ2"
    stamped = stamp_csv(pdf, csv=csv, url="https://sede.example.org/verificar/" + csv)
    assert stamped.startswith(pdf)
    text = _poppler("pdftotext", stamped, tmp_path).split("\f")
    for page in range(pages):
        assert f"Código Seguro de Verificación (CSV): {csv}" in text[page]
        assert "Ajuntament de València" in text[page]


@pytest.mark.parametrize("length", [9000, *range(1150, 1450, 25)])
def test_a_file_name_taller_than_a_page_is_cut_across_pages(length: int) -> None:
    # The short ones make rows about as tall as a page with its repeated heading.
    nombre = "informe-" + "x" * length + ".pdf"
    con_anexo = _con_anexo(nombre, tamano=1)
    drawn = read(render_justificante(con_anexo, VALENCIA))
    assert drawn.pages >= 2
    assert drawn.lowest_y > FOOTER_RESERVED_MM * _PT_PER_MM
    lines = drawn.text.splitlines()
    assert "".join(line for line in lines if line and set(line) <= set(nombre)) == nombre
    # The table's heading is repeated on every page the row runs over.
    running = [
        page
        for page in range(1, drawn.pages + 1)
        if any(line.startswith("x") for line in drawn.page_text(page).splitlines())
    ]
    for page in running:
        assert "Huella SHA-256" in drawn.page_text(page).splitlines()


def test_a_label_is_centred_beside_a_value_of_two_lines() -> None:
    larga = (
        "Una observación bastante larga para que ocupe más de una línea en la columna de "
        "valores de la tabla del justificante."
    )
    drawn = read(render_justificante(asiento(observaciones=larga), VALENCIA))
    label = next(r for r in drawn.runs if r.text == "Observaciones")
    first = next(r for r in drawn.runs if r.text.startswith("Una observación"))
    second = next(r for r in drawn.runs if r.text.endswith("del justificante."))
    assert second.y < label.y < first.y
    assert label.y == pytest.approx((first.y + second.y) / 2, abs=0.05)
