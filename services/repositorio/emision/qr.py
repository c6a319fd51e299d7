"""The QR code of a verification address, with segno's own mask, chosen cheaply.

ISO/IEC 18004 (7.8.3) asks the encoder to try the eight data masks and keep the one
whose symbol has the lowest penalty score. segno scores them module by module in
pure Python, which was over half of stamping a justificante's CSV footer. Here segno
encodes the address once with mask 0; the same four scores (N1 runs, N2 blocks, N3
finder-like patterns, N4 dark proportion) are then computed for every mask on the
symbol held as one integer, with a few shifts and popcounts; and if another mask
wins, its data modules are re-masked and segno's own ``add_format_info`` writes the
format information, the two steps ``segno.make(..., mask=k)`` would have ended
with (a second encoding cost as much again as all of this).

The result is byte for byte what ``segno.make(url, error="m", micro=False)`` makes:
the scores copy segno's, its quirks included (a pattern overlapping one already
counted is not counted again), ties go to the lowest mask number as in segno, and
the tests hold the scores, the mask and the symbol to segno's own. It uses segno's
encoder functions for the function patterns and mask conditions (pinned in
deploy/constraints.txt): a segno upgrade that changed them fails those tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import segno
from segno import encoder

__all__ = ["ERROR_LEVEL", "make_qr", "mask_scores"]

ERROR_LEVEL = "m"
# Light modules around each row and column: the N3 rule looks four modules past a
# pattern, and outside the symbol counts as light.
_PAD = 4
_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_TO_BYTES = bytes.maketrans(b"01", b"\x00\x01")


@dataclass(frozen=True)
class _Layout:
    """Bit positions of a ``side`` × ``side`` symbol: module (i, j) is bit (i + 4)·stride + j.

    Each row is followed by ``_PAD`` light columns and the symbol has ``_PAD`` light
    rows above and below, so shifts never carry one row or column into the next.
    """

    side: int
    stride: int
    size: int  # bits in all, padding included
    modules: int  # every module of the symbol
    padding: int  # every bit around them
    pairs_in_row: int  # modules with a right-hand neighbour
    pairs_in_column: int  # modules with a neighbour below

    def position(self, i: int, j: int) -> int:
        return (i + _PAD) * self.stride + j

    def board(self, rows: Sequence[bytes | bytearray]) -> int:
        """``rows`` (one byte per module, 0 light, 1 dark) as one integer."""
        gap = b"0" * _PAD
        edge = b"0" * (_PAD * self.stride)
        # Lowest bit first, then reversed once: int() reads the highest digit first.
        digits = edge + b"".join(bytes(row).translate(_TO_DIGITS) + gap for row in rows) + edge
        return int(digits[::-1], 2)

    def rows(self, board: int) -> list[bytes]:
        """The inverse of :meth:`board`."""
        digits = format(board, "b").zfill(self.size)[::-1].encode("ascii").translate(_TO_BYTES)
        starts = (self.position(i, 0) for i in range(self.side))
        return [digits[start : start + self.side] for start in starts]

    def bits(self, cells: Sequence[tuple[int, int]]) -> int:
        """The integer with the bits of modules ``cells`` set."""
        digits = bytearray(b"0" * self.size)
        for i, j in cells:
            digits[self.position(i, j)] = 0x31  # "1"
        return int(digits[::-1], 2)


@lru_cache(maxsize=64)
def _layout(side: int) -> _Layout:
    stride = side + _PAD
    size = (side + 2 * _PAD) * stride

    def rows_of(width: int, count: int) -> int:
        # ``width`` modules from the left of each of the first ``count`` rows.
        return sum(((1 << width) - 1) << ((i + _PAD) * stride) for i in range(count))

    modules = rows_of(side, side)
    return _Layout(
        side=side,
        stride=stride,
        size=size,
        modules=modules,
        padding=((1 << size) - 1) ^ modules,
        pairs_in_row=rows_of(side - 1, side),
        pairs_in_column=rows_of(side, side - 1),
    )


@dataclass(frozen=True)
class _Regions:
    """What segno's mask evaluation sees of a symbol's function patterns, per size."""

    data: int  # modules the masks apply to
    function_dark: int  # dark modules outside them (format and version areas are light then)
    masks: tuple[int, ...]  # the eight patterns, on the data modules only


@lru_cache(maxsize=64)
def _regions(side: int) -> _Regions:
    layout = _layout(side)
    # The same function matrix segno's find_and_apply_best_mask builds: timing,
    # finders with separators, alignment; format and version areas reserved as 0,
    # data modules left at 2. The dark module is reserved (0) in it too.
    matrix = encoder.make_matrix(side, side)
    encoder.add_finder_patterns(matrix, side, side)
    encoder.add_alignment_patterns(matrix, side, side)
    patterns = encoder.get_data_mask_functions(False)
    data = [(i, j) for i, row in enumerate(matrix) for j, value in enumerate(row) if value > 1]
    dark = [(i, j) for i, row in enumerate(matrix) for j, value in enumerate(row) if value == 1]
    return _Regions(
        data=layout.bits(data),
        function_dark=layout.bits(dark),
        masks=tuple(
            layout.bits([(i, j) for i, j in data if pattern(i, j)]) for pattern in patterns
        ),
    )


def make_qr(url: str) -> segno.QRCode:
    """The QR code segno makes of ``url`` (level M, not micro), mask included."""
    first = segno.make(url, error=ERROR_LEVEL, micro=False, mask=0)
    side = len(first.matrix)
    layout, regions = _layout(side), _regions(side)
    # Undo mask 0 on the data modules and clear what the evaluation does not see yet
    # (format and version information): the symbol segno scores the masks on.
    symbol = layout.board(first.matrix)
    unmasked = (symbol & regions.data) ^ regions.masks[0]
    unmasked |= regions.function_dark
    totals = [sum(_scores(layout, unmasked ^ mask)) for mask in regions.masks]
    best = totals.index(min(totals))  # of equal lowest scores the first, as segno keeps
    if best != 0:
        # What segno.make(..., mask=best) would do from here: mask the data modules
        # with ``best`` instead of 0, then write the format information for it.
        remasked = layout.rows(symbol ^ regions.masks[0] ^ regions.masks[best])
        for row, new in zip(first.matrix, remasked, strict=True):
            row[:] = new
        error = encoder.normalize_errorlevel(first.error)
        encoder.add_format_info(first.matrix, first.version, error, best)
        first.mask = best
    return first


def mask_scores(matrix: Sequence[bytes | bytearray]) -> tuple[int, int, int, int]:
    """segno's ``encoder.mask_scores`` of a square 0/1 ``matrix``: (N1, N2, N3, N4)."""
    layout = _layout(len(matrix))
    return _scores(layout, layout.board(matrix))


def _scores(layout: _Layout, dark: int) -> tuple[int, int, int, int]:
    stride = layout.stride
    # N1 and N2 work on "same colour as the next module" bits, across and down.
    across = layout.pairs_in_row & ~(dark ^ (dark >> 1))
    down = layout.pairs_in_column & ~(dark ^ (dark >> stride))
    n1 = _runs(across, 1) + _runs(down, stride)
    n2 = 3 * (across & (across >> stride) & down).bit_count()
    light = layout.modules & ~dark
    outside_light = light | layout.padding
    n3 = _finder_like(dark, light, outside_light, 1) + _finder_like(
        dark, light, outside_light, stride
    )
    # segno's own float arithmetic, so a proportion on a boundary rounds the same way.
    percent = float(dark.bit_count()) / (layout.side**2)
    n4 = 10 * int(abs(percent * 100 - 50) / 5)
    return n1, n2, n3, n4


def _runs(same: int, step: int) -> int:
    """N1: 3 + (length - 5) for each run of five or more modules of one colour.

    A run of length L has L - 4 windows of five modules (four "same as next" bits in
    a row) and scores L - 2: one point per window plus two per run.
    """
    windows = same & (same >> step) & (same >> 2 * step) & (same >> 3 * step)
    first_windows = windows & ~(windows << step)
    return windows.bit_count() + 2 * first_windows.bit_count()


def _finder_like(dark: int, light: int, outside_light: int, step: int) -> int:
    """N3 in one direction: 40 per 1:1:3:1:1 pattern with four light modules on a side.

    ``light`` holds the symbol's light modules, ``outside_light`` those and the
    padding, which the four modules before or after a pattern may fall on.
    """
    s = step
    found = (
        dark
        & (light >> s)
        & (dark >> 2 * s)
        & (dark >> 3 * s)
        & (dark >> 4 * s)
        & (light >> 5 * s)
        & (dark >> 6 * s)
    )
    if not found:
        return 0
    before = (
        (outside_light << s)
        & (outside_light << 2 * s)
        & (outside_light << 3 * s)
        & (outside_light << 4 * s)
    )
    after = (
        (outside_light >> 7 * s)
        & (outside_light >> 8 * s)
        & (outside_light >> 9 * s)
        & (outside_light >> 10 * s)
    )
    counted = found & (before | after)
    # Two patterns can share modules only four or six modules apart (1011101 shifted).
    # segno resumes its search seven modules after a counted pattern, so it misses
    # such a second one: rare, and then followed pattern by pattern as segno does.
    if not found & ((found << 4 * s) | (found << 6 * s)):
        return 40 * counted.bit_count()
    kept: set[int] = set()
    remaining = found
    while remaining:
        lowest = remaining & -remaining
        remaining ^= lowest
        at = lowest.bit_length() - 1
        if at - 4 * s in kept or at - 6 * s in kept:
            continue  # inside the last counted pattern: segno's search has passed it
        if counted >> at & 1:
            kept.add(at)
    return 40 * len(kept)
