"""The fonts of the registro's PDFs; for the justificante, parsed once and embedded as subsets.

A justificante is a few hundred characters in two fonts (DejaVu Sans and its bold).
Reading a TrueType file and cutting it down to the glyphs a document uses are the
expensive parts of making one, so here:

- each font file is parsed once per process (:func:`fuente`): its character map, its
  advance widths (to lay out lines) and the raw bytes of every glyph, straight from the
  ``loca``/``glyf`` tables, without decoding outlines;
- a document collects the characters it draws in a :class:`Subconjunto`, which gives each
  character its own glyph code, and at the end builds the embedded TrueType program from
  just those glyphs (plus the components of composite glyphs) and the font's hinting
  tables, byte-for-byte, with its ``/W`` widths and a ToUnicode map so readers extract
  the text. Every character of the full fonts is available; a character neither font
  has is drawn as the ``.notdef`` box and still extracts as itself.

No fontTools object is kept per document: building a subset is slicing and joining bytes.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from fontTools import ttLib

__all__ = ["DIRECTORIO", "ESTADISTICAS", "Fuente", "Incrustada", "Subconjunto", "fuente"]

DIRECTORIO = Path(__file__).resolve().parent / "fonts"
REGULAR = "DejaVuSans.ttf"
NEGRITA = "DejaVuSans-Bold.ttf"

# Tables copied whole into every subset: the hinting programs and global metrics.
_COPIADAS = (b"OS/2", b"cvt ", b"fpgm", b"prep")
# Composite glyph flags (OpenType ``glyf``): which argument sizes follow a component.
_ARGS_WORDS = 0x0001
_HAY_ESCALA = 0x0008
_MAS_COMPONENTES = 0x0020
_ESCALA_XY = 0x0040
_DOS_POR_DOS = 0x0080


class _Estadisticas:
    """How many times a font file was parsed in this process (an instrumentation hook)."""

    analisis = 0


ESTADISTICAS = _Estadisticas()
_lock = threading.Lock()


class _Anchos(dict[str, int]):
    """Advance width of each character in font units, looked up once and remembered."""

    def __init__(self, cmap: dict[int, int], avances: list[int]) -> None:
        super().__init__()
        self._cmap = cmap
        self._avances = avances

    def __missing__(self, caracter: str) -> int:
        ancho = self._avances[self._cmap.get(ord(caracter), 0)]
        self[caracter] = ancho
        return ancho


class Fuente:
    """One TrueType font, parsed once: metrics to lay out text, raw glyphs to embed."""

    def __init__(self, ruta: Path) -> None:
        tt = ttLib.TTFont(ruta, lazy=True)
        self.nombre = tt["name"].getDebugName(6) or ruta.stem
        orden = tt.getGlyphOrder()
        inverso = tt.getReverseGlyphMap()
        self.cmap: dict[int, int] = {cp: inverso[g] for cp, g in tt.getBestCmap().items()}
        metricas = tt["hmtx"].metrics
        self.avances = [metricas[g][0] for g in orden]
        self.lsb = [metricas[g][1] for g in orden]
        head = tt["head"]
        self.upem: int = head.unitsPerEm
        self.bbox = tuple(
            round(v * 1000 / self.upem) for v in (head.xMin, head.yMin, head.xMax, head.yMax)
        )
        hhea = tt["hhea"]
        self.ascent = round(hhea.ascent * 1000 / self.upem)
        self.descent = round(hhea.descent * 1000 / self.upem)
        self.negrita = bool(head.macStyle & 1)
        self.tablas = {tag.encode("latin-1"): tt.reader[tag] for tag in tt.reader.keys()}  # noqa: SIM118 (a reader, not a dict)
        glyf = self.tablas[b"glyf"]
        loca = self.tablas[b"loca"]
        n = len(orden)
        if head.indexToLocFormat:
            offsets = struct.unpack(f">{n + 1}I", loca[: 4 * (n + 1)])
        else:
            offsets = tuple(2 * o for o in struct.unpack(f">{n + 1}H", loca[: 2 * (n + 1)]))
        self.glifos = [glyf[offsets[i] : offsets[i + 1]] for i in range(n)]
        h = self.glifos[self.cmap.get(ord("H"), 0)]
        self.cap_height = (
            round(struct.unpack(">h", h[8:10])[0] * 1000 / self.upem) if h else self.ascent
        )
        tt.close()
        self.anchos = _Anchos(self.cmap, self.avances)
        # Each glyph as embedded (padded, summed, deflated), kept once it was used.
        self.deflados: dict[bytes, tuple[bytes, int, bytes]] = {}

    def ancho(self, texto: str, tamano: float) -> float:
        """Width of ``texto`` set at ``tamano`` points, in points (no kerning, as drawn)."""
        anchos = self.anchos
        return sum(map(anchos.__getitem__, texto)) * tamano / self.upem

    def componentes(self, gid: int) -> list[tuple[int, int]]:
        """The glyph ids a composite glyph refers to, with the offset of each reference."""
        datos = self.glifos[gid]
        if len(datos) < 10 or struct.unpack(">h", datos[:2])[0] >= 0:
            return []
        out = []
        i = 10
        while True:
            banderas, componente = struct.unpack(">HH", datos[i : i + 4])
            out.append((componente, i + 2))
            i += 4 + (4 if banderas & _ARGS_WORDS else 2)
            if banderas & _HAY_ESCALA:
                i += 2
            elif banderas & _ESCALA_XY:
                i += 4
            elif banderas & _DOS_POR_DOS:
                i += 8
            if not banderas & _MAS_COMPONENTES:
                return out


_cargadas: dict[str, Fuente] = {}


def _cargada(nombre: str) -> Fuente:
    cargada = _cargadas.get(nombre)
    if cargada is None:
        # Under the lock, so threads rendering at once still parse each file once.
        with _lock:
            cargada = _cargadas.get(nombre)
            if cargada is None:
                ESTADISTICAS.analisis += 1
                cargada = _cargadas[nombre] = Fuente(DIRECTORIO / nombre)
    return cargada


def fuente(negrita: bool = False) -> Fuente:
    """DejaVu Sans (or its bold), parsed on first use in this process."""
    return _cargada(NEGRITA if negrita else REGULAR)


@dataclass(frozen=True)
class Incrustada:
    """What a PDF needs to embed a subset: its name, TrueType program, widths, ToUnicode."""

    nombre: str
    programa: bytes
    flate: bytes  # ``programa`` as a zlib stream, for FlateDecode
    anchos: list[int]
    to_unicode: bytes


class Subconjunto:
    """The characters one document draws in one font, each with its own 2-byte code.

    Code 0 is ``.notdef``; codes 1… are the characters in order of first use, so the
    same document always gives the same codes and the same embedded bytes.
    """

    def __init__(self, fuente: Fuente) -> None:
        self.fuente = fuente
        self._codigos: dict[str, bytes] = {}

    def codificar(self, texto: str) -> bytes:
        """``texto`` as the big-endian glyph codes of this subset (registering new ones)."""
        codigos = self._codigos
        try:
            return b"".join([codigos[c] for c in texto])
        except KeyError:
            for c in texto:
                if c not in codigos:
                    codigos[c] = (len(codigos) + 1).to_bytes(2, "big")
            return b"".join([codigos[c] for c in texto])

    def incrustar(self) -> Incrustada:
        """The subset font program, its widths (per 1000 em) and ToUnicode map."""
        f = self.fuente
        origen = [0] + [f.cmap.get(ord(c), 0) for c in self._codigos]
        nuevos: dict[int, int] = {}  # component glyph id -> its new id
        glifos: list[bytes] = []
        i = 0
        while i < len(origen):
            datos = f.glifos[origen[i]]
            refs = f.componentes(origen[i])
            if refs:
                parcheado = bytearray(datos)
                for gid, donde in refs:
                    if gid not in nuevos:
                        nuevos[gid] = len(origen)
                        origen.append(gid)
                    struct.pack_into(">H", parcheado, donde, nuevos[gid])
                datos = bytes(parcheado)
            glifos.append(datos)
            i += 1
        programa, flate = _programa(f, origen, glifos)
        etiqueta = _etiqueta(programa)
        n = len(self._codigos)
        anchos = [round(f.avances[g] * 1000 / f.upem) for g in origen[: n + 1]]
        return Incrustada(
            nombre=f"{etiqueta}+{f.nombre.replace(' ', '')}",
            programa=programa,
            flate=flate,
            anchos=anchos,
            to_unicode=_to_unicode(list(self._codigos)),
        )


def _etiqueta(programa: bytes) -> str:
    """Six capital letters naming the subset (ISO 32000 9.6.4), from its content."""
    digest = hashlib.sha256(programa).digest()
    return "".join(chr(65 + b % 26) for b in digest[:6])


def _suma(datos: bytes) -> int:
    """The OpenType checksum of ``datos``: its big-endian 32-bit words added, zero-padded."""
    relleno = datos + b"\0" * (-len(datos) % 4)
    return sum(struct.unpack(f">{len(relleno) // 4}I", relleno)) & 0xFFFFFFFF


def _deflar(datos: bytes) -> bytes:
    """``datos`` as raw deflate blocks ending on a byte boundary, to be joined with others.

    A sync flush ends the blocks without closing the stream, so pieces deflated on
    their own (once per process for what repeats) concatenate into one valid stream.
    """
    if not datos:
        return b""
    cortador = zlib.compressobj(6, zlib.DEFLATED, -15)
    return cortador.compress(datos) + cortador.flush(zlib.Z_SYNC_FLUSH)


def _zlib(piezas: list[bytes], datos: bytes) -> bytes:
    """A zlib stream (what FlateDecode reads) from deflated ``piezas`` of ``datos``."""
    # 0x78 0x9C: deflate, 32 KB window; 0x03 0x00: an empty final block.
    return b"\x78\x9c" + b"".join(piezas) + b"\x03\x00" + struct.pack(">I", zlib.adler32(datos))


# Tables rebuilt for every subset, then the glyphs: with the copied ones, all there are.
_PROPIAS = (b"head", b"hhea", b"hmtx", b"loca", b"maxp", b"post")


@dataclass(frozen=True)
class _Constante:
    """The tables every subset of a font copies, laid out, summed and deflated once."""

    etiquetas: tuple[bytes, ...]
    posiciones: tuple[int, ...]  # from the start of the block
    largos: tuple[int, ...]
    sumas: tuple[int, ...]
    datos: bytes
    deflado: bytes


@functools.cache
def _constante(f: Fuente) -> _Constante:
    etiquetas = tuple(tag for tag in _COPIADAS if tag in f.tablas)
    datos = bytearray()
    posiciones, largos, sumas = [], [], []
    for tag in etiquetas:
        tabla = f.tablas[tag]
        posiciones.append(len(datos))
        largos.append(len(tabla))
        sumas.append(_suma(tabla))
        datos += tabla + b"\0" * (-len(tabla) % 4)
    return _Constante(
        etiquetas,
        tuple(posiciones),
        tuple(largos),
        tuple(sumas),
        bytes(datos),
        _deflar(bytes(datos)),
    )


def _glifo(f: Fuente, datos: bytes) -> tuple[bytes, int, bytes]:
    """A glyph padded to 4 bytes, its checksum and its deflated form, remembered per font."""
    guardado = f.deflados.get(datos)
    if guardado is None:
        relleno = datos + b"\0" * (-len(datos) % 4)
        guardado = (relleno, _suma(relleno), _deflar(relleno))
        if len(f.deflados) > 20_000:  # composites patched per document: keep it bounded
            f.deflados.clear()
        f.deflados[datos] = guardado
    return guardado


def _programa(f: Fuente, origen: list[int], glifos: list[bytes]) -> tuple[bytes, bytes]:
    """A TrueType file with the glyphs ``glifos`` (new ids in order), metrics from ``f``;
    and the same file as a zlib stream.

    The file is laid out as header and table directory, the tables copied whole, the
    tables made for this subset, then the glyphs: only the header, the directory and the
    small tables made here are deflated per document.
    """
    n = len(glifos)
    constante = _constante(f)
    piezas = [_glifo(f, datos) for datos in glifos]
    offsets = [0]
    for relleno, _, _ in piezas:
        offsets.append(offsets[-1] + len(relleno))
    propias: dict[bytes, bytes] = {}
    propias[b"loca"] = struct.pack(f">{n + 1}I", *offsets)
    propias[b"hmtx"] = b"".join(struct.pack(">Hh", f.avances[g], f.lsb[g]) for g in origen)
    hhea = bytearray(f.tablas[b"hhea"])
    struct.pack_into(">H", hhea, 34, n)
    propias[b"hhea"] = bytes(hhea)
    maxp = bytearray(f.tablas[b"maxp"])
    struct.pack_into(">H", maxp, 4, n)
    propias[b"maxp"] = bytes(maxp)
    head = bytearray(f.tablas[b"head"])
    struct.pack_into(">I", head, 8, 0)  # checkSumAdjustment: the file's sum is not known yet
    struct.pack_into(">h", head, 50, 1)  # indexToLocFormat: long offsets
    propias[b"post"] = b"\0\3\0\0" + f.tablas[b"post"][4:32]  # format 3: no glyph names

    cuantas = len(constante.etiquetas) + len(_PROPIAS) + 1
    inicio = 12 + 16 * cuantas
    # Where each table is and its checksum; head's is taken with its adjustment at zero.
    entradas: dict[bytes, tuple[int, int, int]] = {}
    for tag, posicion, largo, suma in zip(
        constante.etiquetas, constante.posiciones, constante.largos, constante.sumas, strict=True
    ):
        entradas[tag] = (suma, inicio + posicion, largo)
    propias[b"head"] = bytes(head)
    posicion = inicio + len(constante.datos)
    for tag in _PROPIAS:
        tabla = propias[tag]
        entradas[tag] = (_suma(tabla), posicion, len(tabla))
        posicion += len(tabla) + (-len(tabla) % 4)
    suma_glyf = sum(suma for _, suma, _ in piezas) & 0xFFFFFFFF
    entradas[b"glyf"] = (suma_glyf, posicion, offsets[-1])

    potencia = 1 << (cuantas.bit_length() - 1)
    directorio = struct.pack(
        ">IHHHH",
        0x00010000,
        cuantas,
        potencia * 16,
        potencia.bit_length() - 1,
        cuantas * 16 - potencia * 16,
    ) + b"".join(struct.pack(">4sIII", tag, *entradas[tag]) for tag in sorted(entradas))
    total = _suma(directorio) + sum(suma for suma, _, _ in entradas.values())
    struct.pack_into(">I", head, 8, (0xB1B0AFBA - total) & 0xFFFFFFFF)
    propias[b"head"] = bytes(head)
    bloque = b"".join(propias[tag] + b"\0" * (-len(propias[tag]) % 4) for tag in _PROPIAS)

    programa = b"".join(
        [directorio, constante.datos, bloque, *(relleno for relleno, _, _ in piezas)]
    )
    flate = _zlib(
        [_deflar(directorio), constante.deflado, _deflar(bloque), *(d for _, _, d in piezas)],
        programa,
    )
    return programa, flate


def _to_unicode(caracteres: list[str]) -> bytes:
    """A ToUnicode CMap mapping code ``i + 1`` to ``caracteres[i]``."""
    lineas = []
    for inicio in range(0, len(caracteres), 100):
        bloque = caracteres[inicio : inicio + 100]
        lineas.append(f"{len(bloque)} beginbfchar")
        for k, c in enumerate(bloque, start=inicio + 1):
            lineas.append(f"<{k:04X}> <{c.encode('utf-16-be').hex().upper()}>")
        lineas.append("endbfchar")
    cuerpo = "\n".join(lineas)
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{cuerpo}\nendcmap\nCMapName currentdict /CMap defineresource pop\n"
        "end\nend"
    ).encode("ascii")
