"""Pure rules of the tramitador."""

from __future__ import annotations

import pytest

from services.tramitador.expedientes.domain import abre_expediente, format_numero


def test_expediente_number() -> None:
    assert format_numero(2026, 1) == "EXP/2026/000001"
    with pytest.raises(ValueError):
        format_numero(2026, 0)


@pytest.mark.parametrize(
    ("tipo", "procedimiento", "opens"),
    [
        ("entrada", "generico", True),
        ("salida", "generico", False),
        ("entrada", None, False),
        ("entrada", "desconocido", False),
    ],
)
def test_which_asientos_open_an_expediente(
    tipo: str, procedimiento: str | None, opens: bool
) -> None:
    assert (
        abre_expediente(tipo_asiento=tipo, procedimiento=procedimiento, catalogo={"generico"})
        is opens
    )
