"""The justificante of an asiento: the receipt the register gives for every entry and exit.

Ley 39/2015 (art. 16.3) asks the register to hand out a receipt stating the number,
date and time of the asiento. This module renders it as an A4 PDF
with everything the asiento records (its rules are in ``domain.py``). It does no I/O
beyond reading the fonts shipped with the registro, so the same asiento always gives
the same bytes.

It lays the page out and writes the PDF objects itself: a justificante is a title, a
paragraph, three tables and a note, and a general-purpose PDF library spent most of the
render measuring and re-measuring them and cutting fonts. Here the lines are broken
with the fonts' own advance widths (:mod:`services.registro.fuentes`, parsed once per
process), the text is drawn in Type0 fonts with Identity-H codes, and each font is
embedded as a subset of the glyphs the document uses, with a ToUnicode map so the text
can be extracted and searched.

The bottom :data:`FOOTER_RESERVED_MM` of every page are left blank on purpose:
the repositorio stamps the CSV, the verification URL and its QR code there when
it issues the document.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import UTC

from services.common.tenants import Tenant
from services.registro.asientos.schemas import AsientoRead, Interesado
from services.registro.domain import TipoAsiento
from services.registro.fuentes import Fuente, Subconjunto, fuente
from services.registro.justificantes.domain import fecha_local

__all__ = [
    "FOOTER_RESERVED_MM",
    "render_justificante",
]

FOOTER_RESERVED_MM = 35.0

_K = 72 / 25.4  # points per millimetre
_ANCHO_PAGINA, _ALTO_PAGINA = 210.0, 297.0
_MARGEN = 20.0
_ANCHO_UTIL = _ANCHO_PAGINA - 2 * _MARGEN
# Text inside a paragraph or a single line keeps this distance from the margins.
_MARGEN_CELDA = 1.0
# A page breaks before its text could reach the area the repositorio stamps.
_LIMITE = _ALTO_PAGINA - FOOTER_RESERVED_MM - 5.0
_CABECERA = 34.0  # where the body starts, below the header every page repeats
_LABEL_MM = 56.0
_GRIS = "0.3529"  # text and rules of the header and the notes
_FONDO = "0.9333"  # fill of labels and table headings


def _apellidos(interesado: Interesado) -> str:
    return " ".join(p for p in (interesado.apellido1, interesado.apellido2) if p) or "—"


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


# --- line breaking ---------------------------------------------------------------------------


def _partir(texto: str, f: Fuente, tamano: float, ancho_mm: float) -> list[tuple[str, bool]]:
    """``texto`` broken into lines at most ``ancho_mm`` wide; each says if it ends a paragraph.

    Breaks at spaces, and inside a word only when the word alone is wider than the line.
    """
    maximo = ancho_mm * _K * f.upem / tamano  # in font units
    anchos = f.anchos
    espacio = anchos[" "]
    lineas: list[tuple[str, bool]] = []
    texto = texto.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    for parrafo in texto.split("\n"):
        actual: list[str] = []
        ocupado = 0
        for palabra in parrafo.split(" "):
            w = sum(map(anchos.__getitem__, palabra))
            extra = espacio + w if actual else w
            if ocupado + extra <= maximo:
                actual.append(palabra)
                ocupado += extra
                continue
            if actual:
                lineas.append((" ".join(actual), False))
            if w <= maximo:
                actual, ocupado = [palabra], w
                continue
            trozo: list[str] = []
            ocupado = 0
            for c in palabra:
                wc = anchos[c]
                if trozo and ocupado + wc > maximo:
                    lineas.append(("".join(trozo), False))
                    trozo, ocupado = [], 0
                trozo.append(c)
                ocupado += wc
            actual = ["".join(trozo)]
        lineas.append((" ".join(actual), True))
    return lineas


@functools.lru_cache(maxsize=256)
def _partir_fijo(
    texto: str, negrita: bool, tamano: float, ancho_mm: float
) -> tuple[tuple[str, bool], ...]:
    """:func:`_partir` for the texts that repeat from one justificante to the next."""
    return tuple(_partir(texto, fuente(negrita), tamano, ancho_mm))


# --- drawing ---------------------------------------------------------------------------------


def _n(valor: float) -> str:
    return f"{valor:.2f}"


@dataclass
class _Lienzo:
    """The pages being drawn: content operators per page, a cursor, the fonts' subsets."""

    regular: Subconjunto = field(default_factory=lambda: Subconjunto(fuente()))
    negrita: Subconjunto = field(default_factory=lambda: Subconjunto(fuente(negrita=True)))
    paginas: list[list[str]] = field(default_factory=list)
    y: float = _CABECERA

    def __post_init__(self) -> None:
        self.nueva_pagina()

    def nueva_pagina(self) -> None:
        self.paginas.append(["2 J 0.57 w"])
        self.y = _CABECERA

    def cabe(self, alto: float) -> bool:
        return self.y + alto <= _LIMITE

    def texto(
        self,
        x: float,
        y_base: float,
        texto: str,
        tamano: float,
        *,
        negrita: bool = False,
        gris: bool = False,
        justificar_a: float | None = None,
        pagina: int = -1,
    ) -> None:
        """One run of text with its baseline at (``x``, ``y_base``) mm from the top-left.

        With ``justificar_a`` (mm) the spaces are widened so the line fills that width.
        """
        if not texto:
            return
        subconjunto = self.negrita if negrita else self.regular
        clave = "F2" if negrita else "F1"
        color = _GRIS if gris else "0"
        posicion = f"{_n(x * _K)} {_n((_ALTO_PAGINA - y_base) * _K)} Td"
        huecos = texto.count(" ")
        if justificar_a is not None and huecos:
            ancho = subconjunto.fuente.ancho(texto, tamano)
            sobra = justificar_a * _K - ancho
            ajuste = f" {-sobra / huecos * 1000 / tamano:.3f} "
            palabras = texto.split(" ")
            partes = [subconjunto.codificar(p + " ").hex() for p in palabras[:-1]]
            partes.append(subconjunto.codificar(palabras[-1]).hex())
            dibujo = "[<" + f">{ajuste}<".join(partes) + ">] TJ"
        else:
            dibujo = f"<{subconjunto.codificar(texto).hex()}> Tj"
        self.paginas[pagina].append(f"BT {color} g /{clave} {tamano:g} Tf {posicion} {dibujo} ET")

    def linea(self, x1: float, y1: float, x2: float, y2: float, *, gris: bool = False) -> None:
        color = _GRIS if gris else "0"
        self.paginas[-1].append(
            f"{color} G {_n(x1 * _K)} {_n((_ALTO_PAGINA - y1) * _K)} m "
            f"{_n(x2 * _K)} {_n((_ALTO_PAGINA - y2) * _K)} l S"
        )

    def rectangulo(self, x: float, y: float, w: float, h: float, operador: str) -> None:
        """A ``w`` × ``h`` mm box at (x, y) from the top-left; ``f`` fills, ``S`` strokes."""
        self.paginas[-1].append(
            f"{_FONDO} g 0 G {_n(x * _K)} {_n((_ALTO_PAGINA - y - h) * _K)} "
            f"{_n(w * _K)} {_n(h * _K)} re {operador}"
        )

    def parrafo(
        self,
        lineas: tuple[tuple[str, bool], ...] | list[tuple[str, bool]],
        tamano: float,
        alto: float,
        *,
        negrita: bool = False,
        gris: bool = False,
    ) -> None:
        """Justified lines across the text width, ``alto`` mm apart, breaking pages."""
        ancho = _ANCHO_UTIL - 2 * _MARGEN_CELDA
        for linea, fin in lineas:
            if not self.cabe(alto):
                self.nueva_pagina()
            self.texto(
                _MARGEN + _MARGEN_CELDA,
                self.y + alto / 2 + 0.3 * tamano / _K,
                linea,
                tamano,
                negrita=negrita,
                gris=gris,
                justificar_a=None if fin else ancho,
            )
            self.y += alto

    def titulo(self, texto: str, tamano: float, alto: float) -> None:
        """A single line in bold: a paragraph of one last (unjustified) line."""
        self.parrafo([(texto, True)], tamano, alto, negrita=True)


@dataclass(frozen=True)
class _Tabla:
    """How a table looks: its columns (mm), text size, line height and padding (mm)."""

    columnas: tuple[float, ...]
    tamano: float
    interlineado: float
    relleno: float
    # A grid with a filled heading row repeated on every page, or rules between rows
    # with the first column as filled labels.
    rejilla: bool


def _tabla(
    lienzo: _Lienzo, tabla: _Tabla, filas: list[list[str]], cabecera: list[str] | None = None
) -> None:
    """Draws ``filas`` (and ``cabecera``, bold) as ``tabla``; a row taller than what is left
    of a page continues on the next one."""
    regular = lienzo.regular.fuente
    negrita = lienzo.negrita.fuente

    def lineas(fila: list[str], es_cabecera: bool) -> list[list[str]]:
        out = []
        for columna, (texto, ancho) in enumerate(zip(fila, tabla.columnas, strict=True)):
            en_negrita = es_cabecera or (not tabla.rejilla and columna == 0)
            f = negrita if en_negrita else regular
            out.append([t for t, _ in _partir(texto, f, tabla.tamano, ancho - 2 * tabla.relleno)])
        return out

    def dibujar(
        celdas: list[list[str]], es_cabecera: bool, separar: bool, centrar: bool = True
    ) -> None:
        renglones = max(len(c) for c in celdas)
        alto = renglones * tabla.interlineado + 2 * tabla.relleno
        x = _MARGEN
        y = lienzo.y
        if not tabla.rejilla:
            # The labels' fill first, so the rule between rows stays visible over it.
            lienzo.rectangulo(x, y, tabla.columnas[0], alto, "f")
            if separar:
                lienzo.linea(_MARGEN, y, _MARGEN + sum(tabla.columnas), y)
        for columna, (textos, ancho) in enumerate(zip(celdas, tabla.columnas, strict=True)):
            en_negrita = es_cabecera or (not tabla.rejilla and columna == 0)
            if tabla.rejilla:
                lienzo.rectangulo(x, y, ancho, alto, "B" if es_cabecera else "S")
            # A cell with fewer lines than its row is centred in it, as fpdf2 did; the
            # pieces of a row cut across pages start at the top, where their label is.
            desfase = (renglones - len(textos)) / 2 if centrar else 0
            for k, texto in enumerate(textos):
                lienzo.texto(
                    x + tabla.relleno,
                    y
                    + tabla.relleno
                    + (desfase + k + 0.5) * tabla.interlineado
                    + 0.3 * tabla.tamano / _K,
                    texto,
                    tabla.tamano,
                    negrita=en_negrita,
                )
            x += ancho
        lienzo.y += alto

    cabecera_lineas = lineas(cabecera, True) if cabecera else None

    def pagina_nueva() -> None:
        lienzo.nueva_pagina()
        if cabecera_lineas:
            dibujar(cabecera_lineas, True, False)

    alto_cabecera = 0.0
    if cabecera_lineas:
        alto_cabecera = (
            max(len(c) for c in cabecera_lineas) * tabla.interlineado + 2 * tabla.relleno
        )
        if not lienzo.cabe(alto_cabecera + 2 * tabla.relleno + tabla.interlineado):
            lienzo.nueva_pagina()
        dibujar(cabecera_lineas, True, False)
    # What a page holds below its header and the repeated heading: a row that fits there
    # moves to the next page whole; a taller one is cut.
    alto_pagina = _LIMITE - _CABECERA - alto_cabecera - 2 * tabla.relleno
    primera = True
    for fila in filas:
        celdas = lineas(fila, False)
        separar = not primera
        primera = False
        cortada = False
        while True:
            total = max(len(c) for c in celdas)
            caben = int((_LIMITE - lienzo.y - 2 * tabla.relleno) // tabla.interlineado)
            if caben >= total:
                dibujar(celdas, False, separar, centrar=not cortada)
                break
            if caben < 1 or total * tabla.interlineado <= alto_pagina:
                pagina_nueva()
                continue
            dibujar([c[:caben] for c in celdas], False, separar, centrar=False)
            celdas = [c[caben:] or [""] for c in celdas]
            separar = False
            cortada = True
            pagina_nueva()


def _cabeceras(lienzo: _Lienzo, entidad: Tenant, numero: str) -> None:
    """Entity, DIR3, register number and page of how many, on top of every page."""
    total = len(lienzo.paginas)
    regular = lienzo.regular.fuente
    for indice in range(total):
        lienzo.texto(
            _MARGEN + _MARGEN_CELDA,
            19 + 0.3 * 12 / _K,
            entidad.nombre,
            12,
            negrita=True,
            pagina=indice,
        )
        base = 24.5 + 0.3 * 9 / _K
        lienzo.texto(
            _MARGEN + _MARGEN_CELDA,
            base,
            f"Código DIR3: {entidad.dir3}",
            9,
            gris=True,
            pagina=indice,
        )
        pie = f"{numero} · página {indice + 1} de {total}"
        x = _ANCHO_PAGINA - _MARGEN - _MARGEN_CELDA - regular.ancho(pie, 9) / _K
        lienzo.texto(x, base, pie, 9, gris=True, pagina=indice)
        lienzo.paginas[indice].append(
            f"{_GRIS} G {_n(_MARGEN * _K)} {_n((_ALTO_PAGINA - 29) * _K)} m "
            f"{_n((_ANCHO_PAGINA - _MARGEN) * _K)} {_n((_ALTO_PAGINA - 29) * _K)} l S 0 G"
        )


_DATOS = _Tabla((_LABEL_MM, _ANCHO_UTIL - _LABEL_MM), 10, 6, 1.5, rejilla=False)
_INTERESADOS = _Tabla((26, 34, 50, _ANCHO_UTIL - 110), 10, 5, 1.5, rejilla=True)
# Small enough that a 64-digit hash stays on one line, to be read or copied whole.
_ANEXOS = _Tabla((42, 18, _ANCHO_UTIL - 60), 7, 4.5, 1.2, rejilla=True)
_NOTA = (
    "La fecha y hora de registro son las oficiales de la sede de la entidad y determinan "
    "el cómputo de plazos. La autenticidad de este justificante puede comprobarse con el "
    "código seguro de verificación (CSV) que figura al pie de cada página."
)


def _cuerpo(lienzo: _Lienzo, asiento: AsientoRead, entidad: Tenant, libro: str) -> None:
    ancho = _ANCHO_UTIL - 2 * _MARGEN_CELDA
    lienzo.parrafo(
        _partir_fijo(f"Justificante de registro de {libro}", True, 16, ancho), 16, 9, negrita=True
    )
    lienzo.parrafo(
        _partir_fijo(
            f"El Registro Electrónico General de {entidad.nombre} hace constar que ha practicado "
            f"el asiento de {libro} que se describe a continuación (artículo 16 de la Ley 39/2015, "
            "de 1 de octubre, del Procedimiento Administrativo Común de las Administraciones "
            "Públicas).",
            False,
            10,
            ancho,
        ),
        10,
        5,
    )
    lienzo.y += 4
    _tabla(lienzo, _DATOS, [[nombre, valor] for nombre, valor in _datos(asiento, entidad)])
    lienzo.y += 6

    lienzo.titulo(f"Interesados ({len(asiento.interesados)})", 12, 8)
    _tabla(
        lienzo,
        _INTERESADOS,
        [
            [
                i.tipo_identificador.value,
                i.identificador,
                i.razon_social or i.nombre or "—",
                _apellidos(i),
            ]
            for i in asiento.interesados
        ],
        ["Tipo", "Identificador", "Nombre", "Apellidos"],
    )
    representados = [i for i in asiento.interesados if i.representante is not None]
    if representados:
        lienzo.y += 2
        for interesado in representados:
            representante = interesado.representante
            assert representante is not None
            texto = (
                f"{interesado.nombre_completo()} ({interesado.identificador}) actúa representado "
                f"por {representante.nombre_completo()} ({representante.identificador})."
            )
            lienzo.parrafo(_partir(texto, lienzo.regular.fuente, 9, ancho), 9, 4.5)
    lienzo.y += 6
    if asiento.anexos:
        # The documents presented, each with its SHA-256: the receipt proves what came in
        # (Ley 39/2015, art. 16.3, asks it to list them in a way that guarantees integrity).
        lienzo.titulo(f"Documentos anexados ({len(asiento.anexos)})", 12, 8)
        _tabla(
            lienzo,
            _ANEXOS,
            [
                [
                    anexo.nombre,
                    f"{anexo.tamano:,} B".replace(",", ".") if anexo.tamano else "—",
                    anexo.sha256 or "sin contenido recibido",
                ]
                for anexo in asiento.anexos
            ],
            ["Fichero", "Tamaño", "Huella SHA-256"],
        )
        lienzo.y += 6
    lienzo.parrafo(_partir_fijo(_NOTA, False, 9, ancho), 9, 4.5, gris=True)


# --- the PDF file ----------------------------------------------------------------------------


def _cadena(texto: str) -> bytes:
    """A PDF text string: literal if ASCII, else UTF-16BE with its byte order mark."""
    if texto.isascii():
        escapado = texto.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return f"({escapado})".encode("ascii")
    return b"<FEFF" + texto.encode("utf-16-be").hex().upper().encode("ascii") + b">"


def _flujo(datos: bytes, extra: str = "") -> bytes:
    # Level 1: content streams are small; the fonts come deflated already.
    comprimido = zlib.compress(datos, 1)
    return (
        f"<< /Filter /FlateDecode /Length {len(comprimido)}{extra} >>\nstream\n".encode("ascii")
        + comprimido
        + b"\nendstream"
    )


def _fuente_pdf(subconjunto: Subconjunto, primero: int) -> list[bytes]:
    """The five objects of an embedded Type0 font, numbered from ``primero``."""
    f = subconjunto.fuente
    incrustada = subconjunto.incrustar()
    nombre = incrustada.nombre
    anchos = " ".join(str(a) for a in incrustada.anchos)
    bbox = " ".join(str(v) for v in f.bbox)
    banderas = 4 | (1 << 18 if f.negrita else 0)  # symbolic; bold forced when bold
    return [
        (
            f"<< /Type /Font /Subtype /Type0 /BaseFont /{nombre} /Encoding /Identity-H "
            f"/DescendantFonts [{primero + 1} 0 R] /ToUnicode {primero + 4} 0 R >>"
        ).encode("ascii"),
        (
            f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{nombre} "
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
            f"/FontDescriptor {primero + 2} 0 R /W [0 [{anchos}]] /CIDToGIDMap /Identity >>"
        ).encode("ascii"),
        (
            f"<< /Type /FontDescriptor /FontName /{nombre} /Flags {banderas} "
            f"/FontBBox [{bbox}] /ItalicAngle 0 /Ascent {f.ascent} /Descent {f.descent} "
            f"/CapHeight {f.cap_height} /StemV {120 if f.negrita else 80} "
            f"/FontFile2 {primero + 3} 0 R >>"
        ).encode("ascii"),
        (
            f"<< /Filter /FlateDecode /Length {len(incrustada.flate)} "
            f"/Length1 {len(incrustada.programa)} >>\nstream\n"
        ).encode("ascii")
        + incrustada.flate
        + b"\nendstream",
        _flujo(incrustada.to_unicode),
    ]


def _pdf(lienzo: _Lienzo, info: dict[str, str], creacion: str) -> bytes:
    """The file: catalog, page tree, info, the two fonts, then each page and its content."""
    paginas = len(lienzo.paginas)
    regular_id, negrita_id = 4, 9
    primera_pagina = 14
    recursos = f"<< /Font << /F1 {regular_id} 0 R /F2 {negrita_id} 0 R >> >>"
    objetos: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R /Lang (es-ES) >>",
        (
            "<< /Type /Pages /Kids ["
            + " ".join(f"{primera_pagina + 2 * p} 0 R" for p in range(paginas))
            + f"] /Count {paginas} /MediaBox [0 0 {_n(_ANCHO_PAGINA * _K)} "
            f"{_n(_ALTO_PAGINA * _K)}] >>"
        ).encode("ascii"),
        b"<< "
        + b" ".join(f"/{clave} ".encode("ascii") + _cadena(valor) for clave, valor in info.items())
        + f" /CreationDate (D:{creacion}Z) >>".encode("ascii"),
    ]
    objetos += _fuente_pdf(lienzo.regular, regular_id)
    objetos += _fuente_pdf(lienzo.negrita, negrita_id)
    for numero, operadores in enumerate(lienzo.paginas):
        objetos.append(
            (
                f"<< /Type /Page /Parent 2 0 R /Resources {recursos} "
                f"/Contents {primera_pagina + 2 * numero + 1} 0 R >>"
            ).encode("ascii")
        )
        objetos.append(_flujo("\n".join(operadores).encode("ascii")))

    salida = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    posiciones = []
    for numero, cuerpo in enumerate(objetos, start=1):
        posiciones.append(len(salida))
        salida += f"{numero} 0 obj\n".encode("ascii") + cuerpo + b"\nendobj\n"
    xref = len(salida)
    salida += f"xref\n0 {len(objetos) + 1}\n0000000000 65535 f \n".encode("ascii")
    salida += b"".join(f"{p:010d} 00000 n \n".encode("ascii") for p in posiciones)
    identificador = hashlib.md5(salida, usedforsecurity=False).hexdigest().upper()
    salida += (
        f"trailer\n<< /Size {len(objetos) + 1} /Root 1 0 R /Info 3 0 R "
        f"/ID [<{identificador}><{identificador}>] >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode("ascii")
    return bytes(salida)


def render_justificante(asiento: AsientoRead, entidad: Tenant) -> bytes:
    """The justificante of ``asiento`` issued by ``entidad``, as PDF bytes.

    Deterministic: the document's dates are the asiento's, so rendering the same
    asiento twice gives the same bytes.
    """
    libro = "entrada" if asiento.tipo is TipoAsiento.ENTRADA else "salida"
    lienzo = _Lienzo()
    _cuerpo(lienzo, asiento, entidad, libro)
    _cabeceras(lienzo, entidad, asiento.numero)
    info = {
        "Title": f"Justificante de registro {asiento.numero}",
        "Subject": f"Justificante de registro de {libro} {asiento.numero}",
        "Author": entidad.nombre,
        "Keywords": f"justificante registro {libro} {asiento.numero}",
        "Creator": "Consistorio · registro",
    }
    creacion = asiento.fecha_registro.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return _pdf(lienzo, info, creacion)
