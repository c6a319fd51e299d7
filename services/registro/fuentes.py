"""The fonts the registro's PDFs are set in, in a form that is quick to load and embed.

fpdf2 parses the whole TrueType file each time a document adds a font, and subsets it
again when it embeds it; DejaVu Sans covers thousands of characters, so for a one-page
justificante both were most of the rendering time. Two things make them cheap:

- Once per process the fonts are cut down to what a document's text needs, in tiers:
  Latin (Spanish, Catalan, Basque, Galician, Portuguese, French... names), then the
  scripts a Spanish register meets (Latin with its extensions, Greek, Cyrillic,
  punctuation and currency signs); a document whose text needs anything else is set
  in the complete fonts, so no character is ever dropped. The smaller the font, the
  cheaper fpdf2's subsetting when it embeds it.
- Each font is parsed by fpdf2 once per process (:meth:`Fuentes.registrar_en`); a
  document gets a copy of the parsed metrics with a fresh, lazily read font file of
  its own, since fpdf2's embedding cuts the font file it holds in place.

The copy relies on fpdf2's ``TTFFont`` attributes (``fpdf2`` is pinned below 2.9 for it);
the render tests read the text back from the PDF, so a change there fails them.
"""

from __future__ import annotations

import atexit
import copy
import functools
import shutil
import tempfile
import threading
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path

from fontTools import subset, ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

__all__ = ["COMUNES", "ESTADISTICAS", "LATINOS", "Fuentes", "fuentes_para"]

DIRECTORIO = Path(__file__).resolve().parent / "fonts"
_REGULAR = "DejaVuSans.ttf"
_NEGRITA = "DejaVuSans-Bold.ttf"

# Code point ranges kept in the quick fonts (inclusive).
_RANGOS = (
    (0x0020, 0x024F),  # Basic Latin … Latin Extended-B
    (0x0300, 0x036F),  # combining diacritics
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x04FF),  # Cyrillic
    (0x1E00, 0x1EFF),  # Latin Extended Additional (e.g. Vietnamese names)
    (0x2000, 0x206F),  # general punctuation: dashes, quotes, ellipsis, bullets
    (0x20A0, 0x20CF),  # currency signs
    (0x2100, 0x214F),  # letterlike symbols (№, ℮…)
)
COMUNES = frozenset(c for inicio, fin in _RANGOS for c in range(inicio, fin + 1))
# The first tier: Latin-1 and Latin Extended-A, punctuation, the euro and the numero sign.
_RANGOS_LATINOS = (
    (0x0020, 0x017F),
    (0x2000, 0x206F),
    (0x20AC, 0x20AC),
    (0x2116, 0x2116),
)
LATINOS = frozenset(c for inicio, fin in _RANGOS_LATINOS for c in range(inicio, fin + 1))
# Line breaks and tabs never reach a glyph.
_CONTROL = frozenset({0x09, 0x0A, 0x0D})


class Fuentes:
    """Where a document's regular and bold fonts are."""

    def __init__(self, regular: Path, negrita: Path) -> None:
        self.regular = regular
        self.negrita = negrita

    def registrar_en(self, pdf: FPDF, familia: str) -> None:
        """Adds the regular ("") and bold ("B") fonts to ``pdf`` as ``familia``, parsed once.

        Equivalent to ``pdf.add_font(familia, style, path)`` for both, without parsing.
        """
        for estilo, ruta in (("", self.regular), ("B", self.negrita)):
            plantilla, datos = _plantilla(ruta)
            fuente = copy.copy(plantilla)
            fuente.i = len(pdf.fonts) + 1
            fuente.fontkey = f"{familia.lower()}{estilo}"
            # fpdf2 cuts this file down to the glyphs used when it embeds it: each
            # document reads its own, lazily, from the bytes kept in memory.
            fuente.ttfont = ttLib.TTFont(
                BytesIO(datos), recalcTimestamp=False, recalcBBoxes=False, lazy=True
            )
            fuente.missing_glyphs = []
            fuente.biggest_size_pt = 0
            fuente.subset = SubsetMap(fuente)
            pdf.fonts[fuente.fontkey] = fuente


class _Estadisticas:
    """How many times a font file was parsed in this process (an instrumentation hook)."""

    analisis = 0


ESTADISTICAS = _Estadisticas()
_lock = threading.Lock()


@functools.cache
def _plantilla(ruta: Path) -> tuple[TTFFont, bytes]:
    """The font at ``ruta`` as fpdf2 parses it, with its bytes, once per process."""
    with _lock:
        pdf = FPDF()
        pdf.add_font("plantilla", "", ruta)
        ESTADISTICAS.analisis += 1
        plantilla = pdf.fonts["plantilla"]
        assert isinstance(plantilla, TTFFont)
        return plantilla, ruta.read_bytes()


@functools.cache
def _rapidas() -> Fuentes:
    """The fonts cut down to :data:`COMUNES`, made once per process."""
    return _recortadas("comunes", COMUNES)


@functools.cache
def _latinas() -> Fuentes:
    """The fonts cut down to :data:`LATINOS`, made once per process."""
    return _recortadas("latinas", LATINOS)


def _recortadas(nivel: str, caracteres: frozenset[int]) -> Fuentes:
    """The fonts cut down to ``caracteres``, in a private temporary directory."""
    with _lock:
        destino = Path(tempfile.mkdtemp(prefix=f"consistorio-fuentes-{nivel}-"))
        atexit.register(shutil.rmtree, destino, ignore_errors=True)
        rutas = []
        for nombre in (_REGULAR, _NEGRITA):
            opciones = subset.Options()
            opciones.name_IDs = ["*"]
            opciones.notdef_outline = True
            opciones.glyph_names = True
            opciones.layout_features = []
            opciones.drop_tables += ["FFTM"]  # a FontForge timestamp: nothing to render
            fuente = subset.load_font(str(DIRECTORIO / nombre), opciones)
            cortador = subset.Subsetter(opciones)
            cortador.populate(unicodes=sorted(caracteres))
            cortador.subset(fuente)
            ruta = destino / nombre
            subset.save_font(fuente, str(ruta), opciones)
            rutas.append(ruta)
        return Fuentes(rutas[0], rutas[1])


def fuentes_para(textos: Iterable[str | None]) -> Fuentes:
    """The fonts to set ``textos`` in: the smallest tier that covers every character."""
    latinos = True
    for texto in textos:
        if not texto:
            continue
        usados = {ord(c) for c in texto} - _CONTROL
        if not usados <= COMUNES:
            return Fuentes(DIRECTORIO / _REGULAR, DIRECTORIO / _NEGRITA)
        latinos = latinos and usados <= LATINOS
    return _latinas() if latinos else _rapidas()
