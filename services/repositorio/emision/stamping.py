"""Stamping the CSV footer on every page of a PDF before it is sealed.

An issued document shows, at the foot of each page, its Código Seguro de
Verificación, the address where anyone can check it and a QR code of that
address: a printed copy proves itself against the electronic original with it
(Ley 40/2015, art. 42; Ley 39/2015, art. 27.3.c). The footer is drawn as an
incremental update (pyhanko's ``IncrementalPdfFileWriter``): the original bytes
stay a prefix of the stamped file, so what was stamped is still provable, and
the seal applied afterwards covers the whole stamped document.

The footer is one Form XObject shared by every page: the two lines of text in
Helvetica (a standard font every reader has, WinAnsi-encoded for the accents)
and the QR code drawn as vector rectangles from segno's matrix (:mod:`.qr`), on a white
quiet zone so it scans over any background. Each page places it at its visual
bottom-left corner, undoing the page's ``/Rotate`` and honouring its crop box,
and scales it down on pages too narrow for it. The original page content is
wrapped in ``q``/``Q`` so a content stream that leaves the graphics state
changed cannot move or hide the footer.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from fpdf.fonts import CORE_FONTS_CHARWIDTHS
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from services.repositorio.emision.qr import make_qr

__all__ = [
    "FONT_SIZE",
    "PageGeometry",
    "StampingError",
    "check_pdf",
    "footer_lines",
    "page_geometry",
    "stamp_csv",
]

FONT_SIZE = 7.0
_LEADING = 9.0
# Side of the QR code itself (without its quiet zone), in points: about 1.6 cm.
QR_SIZE = 44.0
_QUIET_MODULES = 4  # ISO/IEC 18004 asks for four modules of quiet zone
_GAP = 6.0  # between the QR's quiet zone and the text
_MARGIN_LEFT = 20.0
_MARGIN_BOTTOM = 6.0
_HELVETICA = CORE_FONTS_CHARWIDTHS["helvetica"]
# Names of our resources start with this; a number is added until it is free on the page.
_RESOURCE_PREFIX = "CSVPie"
# Everything a broken or hostile file may make the PDF layer raise while we read it.
_PDF_ERRORS = (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError)


class StampingError(ValueError):
    """The PDF cannot be stamped: unreadable, encrypted, or without pages."""


@dataclass(frozen=True)
class PageGeometry:
    """Where a page's visible area is and how it is turned when shown.

    ``matrix`` maps coordinates of the page *as seen* (origin at the visible
    bottom-left corner, ``width`` × ``height`` points) to the page's user space.
    """

    width: float
    height: float
    matrix: tuple[float, float, float, float, float, float]


def footer_lines(csv: str, url: str) -> tuple[str, str]:
    """The two lines of text of the footer, as people read them."""
    return f"Código Seguro de Verificación (CSV): {csv}", f"Verificable en {url}"


def page_geometry(box: tuple[float, float, float, float], rotate: int) -> PageGeometry:
    """The seen size of a page with visible ``box`` shown turned ``rotate`` degrees clockwise.

    ``rotate`` is the page's ``/Rotate`` (a multiple of 90, possibly negative).
    """
    x0, y0, x1, y1 = (
        min(box[0], box[2]),
        min(box[1], box[3]),
        max(box[0], box[2]),
        max(box[1], box[3]),
    )
    w, h = x1 - x0, y1 - y0
    turn = (rotate // 90) % 4 if rotate % 90 == 0 else 0
    if turn == 1:  # seen (u, v) is user (x0 + w - v, y0 + u)
        return PageGeometry(h, w, (0.0, 1.0, -1.0, 0.0, x0 + w, y0))
    if turn == 2:
        return PageGeometry(w, h, (-1.0, 0.0, 0.0, -1.0, x0 + w, y0 + h))
    if turn == 3:  # seen (u, v) is user (x0 + v, y0 + h - u)
        return PageGeometry(h, w, (0.0, -1.0, 1.0, 0.0, x0, y0 + h))
    return PageGeometry(w, h, (1.0, 0.0, 0.0, 1.0, x0, y0))


def check_pdf(pdf: bytes) -> int:
    """Opens ``pdf`` as the stamping will and answers its page count; StampingError if it cannot."""
    return _page_count(_reader(pdf))


def stamp_csv(pdf: bytes, *, csv: str, url: str) -> bytes:
    """``pdf`` with the CSV footer (text, QR of ``url``) on every page, as an incremental update."""
    reader = _reader(pdf)
    pages = _page_count(reader)
    try:
        writer = IncrementalPdfFileWriter.from_reader(reader)
        footer = _Footer(writer, csv=csv, url=url)
        for index in range(pages):
            footer.place_on(index)
        out = BytesIO()
        writer.write(out)
    except StampingError:
        raise
    except _PDF_ERRORS as exc:
        raise StampingError(f"No se puede estampar el PDF: {exc}") from exc
    return out.getvalue()


def _reader(pdf: bytes) -> PdfFileReader:
    if b"%PDF-" not in pdf[:1024]:
        raise StampingError("El fichero no es un PDF (falta la cabecera %PDF-).")
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
    except _PDF_ERRORS as exc:
        raise StampingError("El PDF está dañado o no se puede leer.") from exc
    if reader.encrypted:
        # Re-encrypting the update would need the owner password, which we never hold.
        raise StampingError("El PDF está cifrado: no se puede estampar el CSV.")
    return reader


def _page_count(reader: PdfFileReader) -> int:
    try:
        count = int(reader.root["/Pages"]["/Count"])
    except _PDF_ERRORS as exc:
        raise StampingError("El PDF está dañado o no se puede leer.") from exc
    if count < 1:
        raise StampingError("El PDF no tiene páginas.")
    return count


def _inherited(page: generic.DictionaryObject, key: str) -> generic.PdfObject | None:
    """A page attribute that may be set on the page or on any ancestor in the page tree."""
    node: generic.DictionaryObject | None = page
    seen: set[int] = set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if key in node:
            value: generic.PdfObject = node[key]
            return value
        # ``get`` hands back the indirect reference itself: dereference it here.
        parent = node.get("/Parent")
        if isinstance(parent, generic.IndirectObject):
            parent = parent.get_object()
        node = parent if isinstance(parent, generic.DictionaryObject) else None
    return None


def _box(page: generic.DictionaryObject) -> tuple[float, float, float, float]:
    media = _inherited(page, "/MediaBox")
    crop = _inherited(page, "/CropBox")
    chosen = crop if isinstance(crop, generic.ArrayObject) and len(crop) == 4 else media
    if not isinstance(chosen, generic.ArrayObject) or len(chosen) != 4:
        return 0.0, 0.0, 612.0, 792.0  # ISO 32000 has no default; US Letter is what readers use
    x0, y0, x1, y1 = (float(v) for v in chosen)
    return x0, y0, x1, y1


def _text_width(text: str, size: float) -> float:
    encoded = _encode(text)
    return sum(_HELVETICA.get(chr(b), 556) for b in encoded) * size / 1000


def _encode(text: str) -> bytes:
    return text.encode("cp1252", errors="replace")


def _literal(text: str) -> bytes:
    """A PDF literal string of ``text`` in WinAnsiEncoding."""
    escaped = _encode(text).replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def _num(value: float) -> bytes:
    return f"{value:.4f}".rstrip("0").rstrip(".").encode("ascii") or b"0"


def _qr_content(url: str) -> tuple[bytes, int]:
    """The QR of ``url`` as one filled path, one unit per module; and its side in modules."""
    rows = [list(r) for r in make_qr(url).matrix_iter(border=0)]
    side = len(rows)
    ops = [b"0 0 0 rg"]
    for r, row in enumerate(rows):
        y = side - 1 - r  # matrix rows go down, PDF y goes up
        c = 0
        while c < side:
            if row[c]:
                start = c
                while c < side and row[c]:
                    c += 1
                ops.append(b"%d %d %d 1 re" % (start, y, c - start))
            else:
                c += 1
    ops.append(b"f")
    return b"\n".join(ops) + b"\n", side


class _Footer:
    """The footer XObject of one document, and how each page places it."""

    def __init__(self, writer: IncrementalPdfFileWriter, *, csv: str, url: str) -> None:
        self._writer = writer
        qr_content, side = _qr_content(url)
        qr = generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Form"),
                pdf_name("/BBox"): generic.ArrayObject(
                    [generic.NumberObject(0), generic.NumberObject(0)]
                    + [generic.NumberObject(side)] * 2
                ),
            },
            stream_data=qr_content,
        )
        qr.compress()
        font = generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/Type1"),
                pdf_name("/BaseFont"): pdf_name("/Helvetica"),
                pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding"),
            }
        )
        quiet = _QUIET_MODULES * QR_SIZE / side
        box = QR_SIZE + 2 * quiet
        lines = footer_lines(csv, url)
        text_x = box + _GAP
        self.width = text_x + max(_text_width(line, FONT_SIZE) for line in lines)
        self.height = box
        first_baseline = box / 2 + _LEADING / 2 - FONT_SIZE * 0.2
        module = QR_SIZE / side
        content = b"\n".join(
            [
                b"q 1 1 1 rg 0 0 %s %s re f Q" % (_num(box), _num(box)),
                b"q %s 0 0 %s %s %s cm /QR Do Q"
                % (_num(module), _num(module), _num(quiet), _num(quiet)),
                b"BT 0 0 0 rg /F1 %s Tf %s TL %s %s Td %s Tj %s ' ET"
                % (
                    _num(FONT_SIZE),
                    _num(_LEADING),
                    _num(text_x),
                    _num(first_baseline),
                    _literal(lines[0]),
                    _literal(lines[1]),
                ),
            ]
        )
        stamp = generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Form"),
                pdf_name("/BBox"): generic.ArrayObject(
                    [generic.NumberObject(0), generic.NumberObject(0)]
                    + [generic.FloatObject(self.width), generic.FloatObject(self.height)]
                ),
                pdf_name("/Resources"): generic.DictionaryObject(
                    {
                        pdf_name("/Font"): generic.DictionaryObject(
                            {pdf_name("/F1"): writer.add_object(font)}
                        ),
                        pdf_name("/XObject"): generic.DictionaryObject(
                            {pdf_name("/QR"): writer.add_object(qr)}
                        ),
                    }
                ),
            },
            stream_data=content,
        )
        stamp.compress()
        self._stamp = writer.add_object(stamp)
        # One "save the state" stream shared by every page, before its own content.
        self._save = writer.add_object(generic.StreamObject(stream_data=b"q\n"))

    def place_on(self, index: int) -> None:
        """Adds the footer to page ``index`` (0 is the first)."""
        page_ref, resources_ref = self._writer.find_page_for_modification(index)
        page = page_ref.get_object()
        rotate_value = _inherited(page, "/Rotate")
        rotate = int(rotate_value) if isinstance(rotate_value, generic.NumberObject) else 0
        geometry = page_geometry(_box(page), rotate)
        resources = _resolved_dict(resources_ref)
        xobjects = _resolved_dict(
            resources.raw_get("/XObject") if "/XObject" in resources else None
        )
        name = _free_name(xobjects)
        # The page gets resources of its own: others sharing the old dictionary keep it as it was.
        new_xobjects = generic.DictionaryObject({k: xobjects.raw_get(k) for k in xobjects})
        new_xobjects[pdf_name(name)] = self._stamp
        new_resources = generic.DictionaryObject({k: resources.raw_get(k) for k in resources})
        new_resources[pdf_name("/XObject")] = new_xobjects
        page[pdf_name("/Resources")] = new_resources
        place = self._writer.add_object(
            generic.StreamObject(stream_data=self._placement(geometry, name))
        )
        page[pdf_name("/Contents")] = generic.ArrayObject([self._save, *_content_refs(page), place])
        self._writer.mark_update(page_ref)

    def _placement(self, geometry: PageGeometry, name: str) -> bytes:
        available = geometry.width - 2 * _MARGIN_LEFT
        scale = min(1.0, available / self.width) if available > 0 else 1.0
        a, b, c, d, e, f = geometry.matrix
        return b"Q\nq %s cm %s 0 0 %s %s %s cm %s Do Q\n" % (
            b" ".join(_num(v) for v in (a, b, c, d, e, f)),
            _num(scale),
            _num(scale),
            _num(_MARGIN_LEFT),
            _num(_MARGIN_BOTTOM),
            name.encode("ascii"),
        )


def _resolved_dict(value: generic.PdfObject | None) -> generic.DictionaryObject:
    if isinstance(value, generic.IndirectObject):
        value = value.get_object()
    return value if isinstance(value, generic.DictionaryObject) else generic.DictionaryObject()


def _free_name(xobjects: generic.DictionaryObject) -> str:
    number = 0
    while f"/{_RESOURCE_PREFIX}{number}" in xobjects:
        number += 1
    return f"/{_RESOURCE_PREFIX}{number}"


def _content_refs(page: generic.DictionaryObject) -> list[generic.PdfObject]:
    """The page's content streams as a list of references, whatever form /Contents takes."""
    if "/Contents" not in page:
        return []
    raw = page.raw_get("/Contents")
    if isinstance(raw, generic.IndirectObject):
        target = raw.get_object()
        if isinstance(target, generic.ArrayObject):
            return [target.raw_get(i) for i in range(len(target))]
        return [raw]
    if isinstance(raw, generic.ArrayObject):
        return [raw.raw_get(i) for i in range(len(raw))]
    raise StampingError("El PDF tiene una página con contenido no válido.")
