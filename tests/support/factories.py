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


# Every optional SICRES 3.0 field of an asiento, filled (the oficina must exist).
CAMPOS_SICRES: dict[str, Any] = {
    "oficina": "O00002741",
    "origen": {
        "entidad_registral": "E04975701",
        "unidad_tramitacion": "E04975702",
        "numero_registro": "REGAGE26e00000001",
        "fecha_registro": "2026-03-01T08:00:00Z",
    },
    "entidad_registral_destino": "O00009999",
    "codigo_asunto": "LIC-OBRA",
    "referencia_externa": "REF-77",
    "numero_expediente": "2026/LIC/0042",
    "transporte": {"tipo": "03", "numero": "CD123456789ES"},
    "contacto_usuario": "registro@ayuntamiento.example",
    "documentacion_fisica": "2",
    "observaciones": "Se entrega plano en papel",
    "expone": "Que desea construir un porche de 12 m².",
    "solicita": "Licencia de obra menor.",
}


def interesado_completo() -> dict[str, Any]:
    """An interesado with address, DEH, channel and a representante."""
    return {
        **interesado(nombre="Lucía", apellido1="Núñez", apellido2="Peña"),
        "pais": "724",
        "provincia": "03",
        "municipio": "03014",
        "direccion": "Calle Mayor 1, 2º B",
        "codigo_postal": "03001",
        "email": "lucia@example.org",
        "telefono": "+34 600 000 000",
        "deh": "lucia@deh.example.org",
        "canal_preferente": "02",
        "observaciones": "Prefiere la tarde",
        "representante": {
            "tipo_identificador": "CIF",
            "identificador": "B12345674",
            "razon_social": "Gestoría Levante SL",
            "direccion": "Avenida de la Estación 5",
            "codigo_postal": "03003",
            "canal_preferente": "01",
        },
    }


# What an asiento keeps when it travels to another register in a SICRES 3.0 file and is
# accepted there (its number, date and origin are the receiver's own).
CAMPOS_QUE_VIAJAN = (
    "resumen",
    "unidad_destino",
    "entidad_registral_destino",
    "codigo_asunto",
    "referencia_externa",
    "numero_expediente",
    "transporte",
    "contacto_usuario",
    "documentacion_fisica",
    "observaciones",
    "expone",
    "solicita",
    "interesados",
)
