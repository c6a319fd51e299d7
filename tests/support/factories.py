"""Factories for test data: valid asiento payloads with real check letters."""

from __future__ import annotations

import random
from typing import Any

_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def nif(number: int | None = None) -> str:
    """A valid NIF (DNI number + its check letter)."""
    n = random.randrange(10_000_000, 99_999_999) if number is None else number
    return f"{n:08d}{_LETTERS[n % 23]}"


def nie(number: int | None = None) -> str:
    """A valid NIE (X + number + check letter)."""
    n = random.randrange(1_000_000, 9_999_999) if number is None else number
    return f"X{n:07d}{_LETTERS[n % 23]}"


def wrong_letter(identifier: str) -> str:
    """The same identifier with a check letter that does not match."""
    last = identifier[-1]
    return identifier[:-1] + ("A" if last != "A" else "B")


def interesado(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tipo_identificador": "NIF",
        "identificador": nif(),
        "nombre": "Lucía",
        "apellido1": "García",
    }
    data.update(overrides)
    return data


def asiento(**overrides: Any) -> dict[str, Any]:
    """A valid AsientoCreate body; keyword overrides replace fields."""
    data: dict[str, Any] = {
        "tipo": "entrada",
        "resumen": "Solicitud de licencia de obra menor",
        "unidad_destino": "L01030149",
        "interesados": [interesado()],
        "procedimiento": "generico",
    }
    data.update(overrides)
    return data
