"""Pure rules of the worklist: the order of its trámites and its cursor."""

from __future__ import annotations

from datetime import date

__all__ = ["SIN_VENCIMIENTO", "clave_orden"]

# Trámites without a due date go last: they sort as if due on the last representable day.
SIN_VENCIMIENTO = date(9999, 12, 31)


def clave_orden(vencimiento: date | None) -> date:
    """The date a trámite sorts by (nearest first)."""
    return vencimiento or SIN_VENCIMIENTO
