"""Pure rules of the asiento search: cursors, instants, what an interesado term is.

No I/O: the service turns these into SQL, the API into 422 problems.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.registro.domain import TipoIdentificador, normalize_identificador

__all__ = [
    "Cursor",
    "EstadoAsiento",
    "Filtros",
    "TerminoInteresado",
    "clasificar_interesado",
    "decode_cursor",
    "encode_cursor",
    "like_contains",
    "parse_instante",
    "texto_buscado",
    "validate_numero",
]

_NUMERO = re.compile(r"^[ES]/\d{4}/\d{6,}$")
_HAS_DIGIT = re.compile(r"\d")
_PASAPORTE = re.compile(r"^[A-Z0-9]{3,20}$")


class EstadoAsiento(StrEnum):
    """Whether an asiento stands or was annulled (it is never deleted)."""

    REGISTRADO = "registrado"
    ANULADO = "anulado"


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last asiento's (fecha_registro, id), in the listing order."""

    fecha_registro: datetime
    id: str


def encode_cursor(cursor: Cursor) -> str:
    """The opaque cursor a client sends back: base64url (unpadded) of a JSON pair."""
    raw = json.dumps([cursor.fecha_registro.isoformat(), cursor.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")


def decode_cursor(value: str) -> Cursor:
    """Reads a cursor made by encode_cursor; raises ValueError on anything else."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        fecha, ident = json.loads(raw)
        instante = datetime.fromisoformat(fecha)
        canonical = str(uuid.UUID(ident))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("cursor no válido: use el next_cursor de una respuesta") from exc
    if instante.tzinfo is None:
        raise ValueError("cursor no válido: use el next_cursor de una respuesta")
    return Cursor(instante, canonical)


def parse_instante(value: str, zona: ZoneInfo) -> datetime:
    """An instant from a date-time (RFC 3339) or a date (the entity's local midnight).

    A date-time without offset is read in the entity's local time too, so staff
    can type what the register shows.
    """
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=zona)
        instante = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("fecha no válida: use AAAA-MM-DD o una fecha y hora RFC 3339") from exc
    return instante if instante.tzinfo is not None else instante.replace(tzinfo=zona)


def validate_numero(value: str) -> str:
    """An asiento number as the register writes it, e.g. ``E/2026/000001``."""
    normalized = value.strip().upper()
    if not _NUMERO.match(normalized):
        raise ValueError("número no válido: E o S, año y secuencia, p. ej. E/2026/000001")
    return normalized


@dataclass(frozen=True)
class TerminoInteresado:
    """What an ``interesado`` search term means: an exact identifier or part of a name."""

    identificador: str | None = None
    nombre: str | None = None


def clasificar_interesado(value: str) -> TerminoInteresado:
    """An identifier if it is one (a valid NIF, NIE or CIF, or a passport-like code
    with digits), else a name to look for inside the interesados' names."""
    for tipo in (TipoIdentificador.NIF, TipoIdentificador.NIE, TipoIdentificador.CIF):
        try:
            return TerminoInteresado(identificador=normalize_identificador(tipo, value))
        except ValueError:
            continue
    compact = re.sub(r"[\s.\-/]", "", value).upper()
    # Names have no digits; identifiers of every kind do.
    if _HAS_DIGIT.search(compact) and _PASAPORTE.match(compact):
        return TerminoInteresado(identificador=compact)
    return TerminoInteresado(nombre=texto_buscado(value))


def texto_buscado(value: str) -> str:
    """A text to search for, spaces collapsed; under three characters no index helps."""
    normalized = " ".join(value.split())
    if len(normalized) < 3:
        raise ValueError("escriba al menos 3 caracteres")
    return normalized


def like_contains(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere, its wildcards taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Filtros:
    """The parsed filters of a search; None means "any"."""

    numero: str | None = None
    desde: datetime | None = None
    hasta: datetime | None = None
    interesado: TerminoInteresado | None = None
    q: str | None = None
    unidad: str | None = None
    oficina: str | None = None
    tipo: str | None = None
    estado: EstadoAsiento | None = None
    corrige: str | None = None
    # A citizen's search sees only what they presented.
    registrado_por: str | None = None

    @property
    def por_contenido(self) -> bool:
        """Whether the search looks inside asientos (names, resumen), not only at columns."""
        return self.interesado is not None or self.q is not None
