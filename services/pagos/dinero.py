"""Money as the platform handles it: ``Decimal`` euros at the edges, integer cents inside.

A float never holds an amount: the API takes and gives decimal strings
(``"159.00"``), the database and the bus store whole cents, and every rounding
is explicit (half up, to the cent, as Spanish tax rules round).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["CENTIMO", "ImporteNoValido", "a_centimos", "a_euros", "redondear"]

CENTIMO = Decimal("0.01")


class ImporteNoValido(ValueError):
    """An amount that is not a non-negative number of euros with at most two decimals."""


def a_centimos(importe: Decimal | str | int) -> int:
    """Whole cents of an amount in euros; more than two decimals or a negative is refused."""
    if isinstance(importe, float):
        raise ImporteNoValido("un importe nunca es un número de coma flotante")
    try:
        valor = Decimal(importe)
    except (InvalidOperation, ValueError) as exc:
        raise ImporteNoValido(f"{importe!r} no es un importe") from exc
    if not valor.is_finite():
        raise ImporteNoValido(f"{importe!r} no es un importe")
    if valor < 0:
        raise ImporteNoValido("el importe no puede ser negativo")
    if valor != valor.quantize(CENTIMO):
        raise ImporteNoValido("el importe tiene más de dos decimales")
    return int(valor * 100)


def a_euros(centimos: int) -> Decimal:
    """The amount in euros, with two decimals, of a whole number of cents."""
    return (Decimal(centimos) / 100).quantize(CENTIMO)


def redondear(valor: Decimal) -> Decimal:
    """Rounds to the cent, half up (0.005 → 0.01)."""
    return valor.quantize(CENTIMO, rounding=ROUND_HALF_UP)
