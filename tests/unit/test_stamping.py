"""The CSV footer stamped on every page: what it says, its QR, where it sits on turned or
cropped pages, and that the original document is kept intact underneath."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
import segno
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from services.repositorio.emision import stamping
from services.repositorio.emision.stamping import StampingError, page_geometry, stamp_csv
from tests.support.pades_material import minimal_pdf

CSV = "ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"
URL = f"https://sede.ejemplo.es/verificar/{CSV}"


def build_pdf(pages: list[str], *, shared_resources: bool = False) -> bytes:
    """A PDF whose page ``i`` has the extra dictionary entries ``pages[i]``.

    With ``shared_resources`` every page points at one indirect resource dictionary,
    as many producers write them.
    """
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: b"<< /Font << /F1 3 0 R >> >>",
    }
    kids = []
    number = 5
    for extra in pages:
        content = b"BT /F1 18 Tf 72 720 Td (Pagina) Tj ET"
        resources = "4 0 R" if shared_resources else "<< /Font << /F1 3 0 R >> >>"
        objects[number] = (
            f"<< /Type /Page /Parent 2 0 R {extra} /Contents {number + 1} 0 R "
            f"/Resources {resources} >>"
        ).encode()
        objects[number + 1] = (
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"
        )
        kids.append(number)
        number += 2
    objects[2] = (
        b"<< /Type /Pages /MediaBox [0 0 595 842] /Kids ["
        + b" ".join(f"{k} 0 R".encode() for k in kids)
        + f"] /Count {len(kids)} >>".encode()
    )
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for key in sorted(objects):
        offsets[key] = len(out)
        out += f"{key} 0 obj\n".encode() + objects[key] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for key in range(1, size):
        out += f"{offsets[key]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pages_of(pdf: bytes) -> list[generic.DictionaryObject]:
    reader = PdfFileReader(BytesIO(pdf))
    count = int(reader.root["/Pages"]["/Count"])
    return [reader.find_page_for_modification(i)[0].get_object() for i in range(count)]


def content_streams(page: generic.DictionaryObject) -> list[bytes]:
    contents = page["/Contents"]
    if isinstance(contents, generic.StreamObject):
        return [contents.data]
    return [contents[i].data for i in range(len(contents))]


def footer_of(page: generic.DictionaryObject) -> tuple[bytes, generic.StreamObject]:
    """The placement stream of a page's footer and the footer XObject it draws."""
    last = content_streams(page)[-1]
    match = re.search(rb"/(CSVPie\d+) Do", last)
    assert match, last
    xobject = page["/Resources"]["/XObject"]["/" + match.group(1).decode()]
    return last, xobject


def qr_cells(qr: generic.StreamObject) -> set[tuple[int, int]]:
    """The dark modules a QR XObject paints, as (row, column) from the top-left."""
    side = int(qr["/BBox"][2])
    cells = set()
    for x, y, w in re.findall(rb"(\d+) (\d+) (\d+) 1 re", qr.data):
        for c in range(int(x), int(x) + int(w)):
            cells.add((side - 1 - int(y), c))
    return cells


def expected_cells(url: str) -> set[tuple[int, int]]:
    rows = segno.make(url, error="m", micro=False).matrix_iter(border=0)
    return {(r, c) for r, row in enumerate(rows) for c, dark in enumerate(row) if dark}


def matrix_apply(m: tuple[float, ...], u: float, v: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return a * u + c * v + e, b * u + d * v + f


# --- what the footer says ------------------------------------------------------------------


def test_every_page_gets_the_csv_text_and_a_qr_of_the_url() -> None:
    original = minimal_pdf(pages=3)
    stamped = stamp_csv(original, csv=CSV, url=URL)
    pages = pages_of(stamped)
    assert len(pages) == 3
    for page in pages:
        _, footer = footer_of(page)
        text = footer.data
        assert b"(C\xf3digo Seguro de Verificaci\xf3n \\(CSV\\): " + CSV.encode() + b")" in text
        assert b"(Verificable en " + URL.encode() + b")" in text
        font = footer["/Resources"]["/Font"]["/F1"]
        assert font["/BaseFont"] == "/Helvetica"
        assert font["/Encoding"] == "/WinAnsiEncoding"
        qr = footer["/Resources"]["/XObject"]["/QR"]
        assert qr_cells(qr) == expected_cells(URL)
        # The page's own text is still drawn, first.
        assert any(b"(Resolucion de prueba) Tj" in s for s in content_streams(page))


def test_the_original_bytes_stay_untouched_underneath() -> None:
    original = minimal_pdf(pages=2)
    stamped = stamp_csv(original, csv=CSV, url=URL)
    assert stamped.startswith(original)
    assert len(stamped) > len(original)


def test_footer_lines_are_what_people_read() -> None:
    assert stamping.footer_lines(CSV, URL) == (
        f"Código Seguro de Verificación (CSV): {CSV}",
        f"Verificable en {URL}",
    )


# --- where it sits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rotate", "seen_origin", "seen_right"),
    [
        (0, (0, 0), (1, 0)),  # the bottom-left corner, the x axis to the right
        (90, (595, 0), (0, 1)),  # shown turned clockwise: user right edge is the bottom
        (180, (595, 842), (-1, 0)),
        (270, (0, 842), (0, -1)),
        (-90, (0, 842), (0, -1)),
    ],
)
def test_page_geometry_puts_the_footer_at_the_seen_bottom_left(
    rotate: int, seen_origin: tuple[int, int], seen_right: tuple[int, int]
) -> None:
    geometry = page_geometry((0, 0, 595, 842), rotate)
    turned = rotate % 180 != 0
    assert (geometry.width, geometry.height) == ((842, 595) if turned else (595, 842))
    origin = matrix_apply(geometry.matrix, 0, 0)
    step = matrix_apply(geometry.matrix, 1, 0)
    assert origin == seen_origin
    assert (step[0] - origin[0], step[1] - origin[1]) == seen_right
    # The seen top-right corner is the opposite corner of the page.
    far = matrix_apply(geometry.matrix, geometry.width, geometry.height)
    assert (round(far[0]), round(far[1])) == (595 - seen_origin[0], 842 - seen_origin[1])


def test_page_geometry_honours_the_crop_box_origin() -> None:
    geometry = page_geometry((50, 60, 545, 782), 0)
    assert (geometry.width, geometry.height) == (495, 722)
    assert matrix_apply(geometry.matrix, 0, 0) == (50, 60)


def test_turned_and_cropped_pages_are_stamped_where_they_are_seen() -> None:
    pdf = build_pdf(["/Rotate 90", "/CropBox [50 60 545 782]"])
    first, second = (footer_of(p)[0] for p in pages_of(stamp_csv(pdf, csv=CSV, url=URL)))
    assert b"q 0 1 -1 0 595 0 cm" in first
    assert b"q 1 0 0 1 50 60 cm" in second


def test_a_narrow_page_gets_the_footer_scaled_down_to_fit() -> None:
    pdf = build_pdf(["/MediaBox [0 0 200 300]", ""])
    narrow, wide = (footer_of(p)[0] for p in pages_of(stamp_csv(pdf, csv=CSV, url=URL)))
    scale = float(re.search(rb"cm ([0-9.]+) 0 0 ", narrow).group(1))  # type: ignore[union-attr]
    assert scale < 1
    assert re.search(rb"cm 1 0 0 1 20 6 cm", wide)


def test_the_page_content_cannot_move_the_footer() -> None:
    # A content stream that leaves the CTM changed would carry the footer off the page.
    page = pages_of(stamp_csv(minimal_pdf(), csv=CSV, url=URL))[0]
    streams = content_streams(page)
    assert streams[0] == b"q\n"
    assert streams[-1].startswith(b"Q\nq ")


def test_pages_sharing_resources_each_get_their_own() -> None:
    pdf = build_pdf(["", ""], shared_resources=True)
    stamped = stamp_csv(pdf, csv=CSV, url=URL)
    for page in pages_of(stamped):
        assert "/F1" in page["/Resources"]["/Font"]
        footer_of(page)
    # The shared dictionary itself is not rewritten: other readers of it see it as it was.
    reader = PdfFileReader(BytesIO(stamped))
    shared = reader.get_object(generic.Reference(4, 0))
    assert "/XObject" not in shared


def test_stamping_twice_keeps_both_footers_under_distinct_names() -> None:
    once = stamp_csv(minimal_pdf(), csv=CSV, url=URL)
    other = "BCDEF-GHJKL-MNPQR-STUVW-XYZ23"
    twice = stamp_csv(once, csv=other, url=f"https://sede.ejemplo.es/verificar/{other}")
    xobjects = pages_of(twice)[0]["/Resources"]["/XObject"]
    assert {"/CSVPie0", "/CSVPie1"} <= set(xobjects)


# --- what cannot be stamped ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"not a pdf at all",
        b"%PDF-1.7\nbroken beyond repair",
        minimal_pdf()[:200],
    ],
)
def test_unreadable_documents_are_refused(data: bytes) -> None:
    with pytest.raises(StampingError):
        stamp_csv(data, csv=CSV, url=URL)
    with pytest.raises(StampingError):
        stamping.check_pdf(data)


def test_a_pdf_without_pages_is_refused() -> None:
    with pytest.raises(StampingError, match="páginas"):
        stamping.check_pdf(build_pdf([]))


def test_check_pdf_counts_pages() -> None:
    assert stamping.check_pdf(minimal_pdf(pages=4)) == 4


@pytest.mark.parametrize("user_password", ["usuario", ""])
def test_an_encrypted_pdf_is_refused(user_password: str) -> None:
    # Even one readers open without a password: the update would have to be encrypted too.
    writer = PdfFileWriter()
    box = generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)])
    writer.insert_page(PageObject(contents=[], media_box=box))
    writer.encrypt("propietario", user_password)
    out = BytesIO()
    writer.write(out)
    with pytest.raises(StampingError, match="cifrado"):
        stamp_csv(out.getvalue(), csv=CSV, url=URL)
