"""The fonts the registro's PDFs are set in, in a form that is quick to load.

fpdf2 parses the whole TrueType file each time a document adds a font, and DejaVu Sans
covers thousands of characters: for a one-page justificante that parse was most of the
rendering time. Once per process the fonts are cut down to the scripts of the names
and texts a Spanish register meets (Latin with its extensions, Greek, Cyrillic,
punctuation and currency signs); a document whose text needs anything else is set in
the complete fonts, so no character is ever dropped. fpdf2 subsets again to the
characters used when it embeds the font, as before.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from fontTools import subset

__all__ = ["COMUNES", "Fuentes", "fuentes_para"]

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
# Line breaks and tabs never reach a glyph.
_CONTROL = frozenset({0x09, 0x0A, 0x0D})


class Fuentes:
    """Where a document's regular and bold fonts are."""

    def __init__(self, regular: Path, negrita: Path) -> None:
        self.regular = regular
        self.negrita = negrita


_lock = threading.Lock()


@functools.cache
def _rapidas() -> Fuentes:
    """The cut-down fonts, made once per process in a private temporary directory."""
    with _lock:
        destino = Path(tempfile.mkdtemp(prefix="consistorio-fuentes-"))
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
            cortador.populate(unicodes=sorted(COMUNES))
            cortador.subset(fuente)
            ruta = destino / nombre
            subset.save_font(fuente, str(ruta), opciones)
            rutas.append(ruta)
        return Fuentes(rutas[0], rutas[1])


def fuentes_para(textos: Iterable[str | None]) -> Fuentes:
    """The fonts to set ``textos`` in: the quick ones when they cover every character."""
    for texto in textos:
        if texto and any(ord(c) not in COMUNES and ord(c) not in _CONTROL for c in texto):
            return Fuentes(DIRECTORIO / _REGULAR, DIRECTORIO / _NEGRITA)
    return _rapidas()
