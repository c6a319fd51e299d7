"""The footer's QR code: the mask chosen cheaply is segno's own, and so is the symbol.

segno scores the eight masks itself when none is forced (ISO/IEC 18004, 7.8.3); these
tests hold :mod:`services.repositorio.emision.qr` to that choice and to segno's
symbol byte for byte, on the verification addresses the platform prints and on a
spread of other contents, and its penalty scores to segno's on real and made-up
matrices (the made-up ones reach the rare N3 overlaps real symbols seldom have).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import segno
from segno import encoder

from services.csv.domain import generar_codigo, url_verificacion
from services.repositorio.emision import qr

# Public base addresses of every length a council may set: QR versions 4 to 8 at level M.
BASES = [
    "http://127.0.0.1:8000",
    "https://sede.ejemplo.es",
    "https://sede.alicante.es/",
    "https://sede.ayuntamientodemadrid.es/repositorio",
    "https://sede.ayuntamiento-de-villanueva-de-la-serena.es/consistorio",
    "https://sedeelectronica.diputaciondevalencia.es/ayuntamientos/torrent/servicios/csv",
]


def verification_urls(rng: random.Random, count: int) -> list[str]:
    """Addresses as the csv service prints them, with codes from a seeded generator."""
    return [url_verificacion(rng.choice(BASES), generar_codigo(rng.choice)) for _ in range(count)]


def other_contents(rng: random.Random, count: int) -> list[str]:
    """Numeric, alphanumeric, byte and UTF-8 contents of 1 to 300 characters."""
    alphabets = [
        "0123456789",
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:",
        "abcdefghijklmnopqrstuvwxyz0123456789/?=&-_.:",
        "aeiouáéíóúñüçABC€ ",
    ]
    contents = []
    for _ in range(count):
        # Mostly versions 1 to 10; a few up to 10-12 (larger ones are slow for segno).
        spread = rng.random()
        longest = 60 if spread < 0.6 else 150 if spread < 0.9 else 300
        length = rng.randint(1 if longest == 60 else 60, longest)
        alphabet = rng.choice(alphabets)
        contents.append("".join(rng.choice(alphabet) for _ in range(length)))
    return contents


@pytest.fixture(scope="module")
def cases() -> list[str]:
    rng = random.Random(20261207)
    return verification_urls(rng, 100) + other_contents(rng, 80)


def test_the_symbol_is_segnos_own_mask_and_modules(cases: list[str]) -> None:
    versions, masks = set(), set()
    for number, content in enumerate(cases):
        expected = segno.make(content, error="m", micro=False)
        got = qr.make_qr(content)
        assert got.mask == expected.mask, content
        assert (got.version, got.error) == (expected.version, expected.error), content
        assert got.matrix == expected.matrix, content
        versions.add(expected.version)
        masks.add(expected.mask)
        if number == 99:  # the verification addresses: the versions the footer prints
            assert versions == {4, 5, 6, 7, 8}, versions
    # The spread the cases are meant to have: every mask chosen, small and larger symbols.
    assert masks == set(range(8))
    assert min(versions) <= 2 and max(versions) >= 10, versions


@pytest.mark.parametrize("length", [700, 1500])
def test_large_symbols_too(length: int) -> None:
    """Versions of 20 and more: many alignment patterns, version information."""
    content = "".join(random.Random(length).choice("abcdefghij/?=&") for _ in range(length))
    expected = segno.make(content, error="m", micro=False)
    got = qr.make_qr(content)
    assert expected.version >= 20
    assert (got.mask, got.matrix) == (expected.mask, expected.matrix)


@pytest.fixture
def segno_scores(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, tuple[int, ...]]]]:
    """Every (matrix, scores) segno evaluates while it chooses a mask, in mask order."""
    seen: list[tuple[Any, tuple[int, ...]]] = []
    original = encoder.mask_scores

    def record(matrix: Any, width: int, height: int) -> tuple[int, ...]:
        scores: tuple[int, ...] = original(matrix, width, height)
        seen.append((tuple(bytes(row) for row in matrix), scores))
        return scores

    monkeypatch.setattr(encoder, "mask_scores", record)
    yield seen


def test_each_masks_penalty_scores_are_segnos(
    cases: list[str], segno_scores: list[tuple[Any, tuple[int, ...]]]
) -> None:
    for content in cases[::5]:
        segno_scores.clear()
        segno.make(content, error="m", micro=False)
        assert len(segno_scores) == 8
        for matrix, scores in segno_scores:
            assert qr.mask_scores(matrix) == scores, content


# Found by search (about 1 in 100 addresses): two or three masks share the lowest score.
TIES = [
    "https://sede.ejemplo.es/verificar/QXR4F-NN795-PJYRU-5E36D-6HFJJ",  # masks 0, 5, 7
    "https://sede.ejemplo.es/verificar/6ZY2C-GW836-PXDAH-Q4D32-JSYQN",  # masks 2, 4
    "https://sede.ejemplo.es/verificar/FHR9Z-QPFNA-K2Q7Y-MDWUE-J4A5S",  # masks 4, 6
    "https://sede.ejemplo.es/verificar/ECFES-2X4ER-W7SG7-387QJ-XSHM5",  # masks 6, 7
]


@pytest.mark.parametrize("url", TIES)
def test_a_tie_goes_to_the_lowest_mask_as_in_segno(
    url: str, segno_scores: list[tuple[Any, tuple[int, ...]]]
) -> None:
    expected = segno.make(url, error="m", micro=False)
    totals = [sum(scores) for _, scores in segno_scores]
    assert totals.count(min(totals)) > 1  # still a tie with this segno
    assert totals.index(min(totals)) == expected.mask
    got = qr.make_qr(url)
    assert got.mask == expected.mask
    assert got.matrix == expected.matrix


# Two 1:1:3:1:1 patterns sharing three modules: segno counts only the first.
TWO_SHARING = b"\x01\x00\x01\x01\x01\x00\x01\x01\x01\x00\x01"


def made_up_matrix(rng: random.Random, side: int) -> list[bytearray]:
    """Rows of finder-like runs, light gaps and runs of one colour, sometimes transposed."""
    pieces = [
        b"\x01\x00\x01\x01\x01\x00\x01",  # 1:1:3:1:1
        TWO_SHARING,
        b"\x00\x00\x00\x00",
        b"\x01\x01\x01\x01\x01\x01",
        b"\x00",
        b"\x01",
    ]
    rows = []
    for _ in range(side):
        row = bytearray()
        while len(row) < side:
            row += rng.choice(pieces)
        rows.append(row[:side])
    if rng.random() < 0.5:
        rows = [bytearray(rows[j][i] for j in range(side)) for i in range(side)]
    return rows


def test_penalty_scores_match_segno_on_made_up_matrices() -> None:
    rng = random.Random(18004)
    overlapping = 0
    for _ in range(300):
        side = rng.choice([21, 25, 29, 37, 45, 57])
        matrix = made_up_matrix(rng, side)
        assert qr.mask_scores(matrix) == encoder.mask_scores(tuple(matrix), side, side)
        lines = [bytes(r) for r in matrix] + [bytes(c) for c in zip(*matrix, strict=True)]
        overlapping += any(TWO_SHARING in line for line in lines)
    assert overlapping >= 50  # segno's skip over a second, overlapping pattern is exercised


@pytest.mark.parametrize("side", [21, 25])
def test_penalty_scores_match_segno_on_plain_matrices(side: int) -> None:
    light = [bytearray(side) for _ in range(side)]
    dark = [bytearray(b"\x01" * side) for _ in range(side)]
    stripes = [bytearray(b"\x01\x00" * side)[:side] for _ in range(side)]
    for matrix in (light, dark, stripes):
        assert qr.mask_scores(matrix) == encoder.mask_scores(tuple(matrix), side, side)
