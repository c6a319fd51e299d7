"""Pure rules of oficinas de registro, libros and numbering. No I/O, no framework.

Numbering has two modes per entity:

``central``
    one gapless sequence per tipo and year for the whole entity: ``E/2026/000001``
    (the format the register always had, see ``domain.format_numero``).
``oficina``
    one gapless sequence per oficina, tipo and year. Each oficina gets, when it is
    created, a prefijo (1 to 999, unique in the entity); its numbers are the year's
    book letter and year, then the prefijo in three digits and the sequence in six
    or more: ``E/2026/002000012`` is the 12th entrada of oficina 2 in 2026. That
    keeps the shape the bus contracts promise (``[ES]/yyyy/dddddd...``): 16
    characters up to a million asientos per oficina and year, and never more than
    the 20 of SICRES 3.0 Numero_Registro_Entrada.

Numbers stay unique in the entity because a year is numbered in one mode only:
a change of mode takes effect at once if the entity has numbered nothing yet in
the current year, and otherwise on 1 January of the next year. Every series keeps
its own counter, so no number is ever given twice.

Libros: while an entity has opened no libro of a tipo, that tipo registers into
an implicit, always open book (what entities that configure nothing get). Once
one exists, an asiento goes into the libro of its oficina, or else into the
central libro of its tipo; if neither exists or the one that applies is closed,
it cannot be registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.registro.domain import TipoAsiento, validate_dir3

__all__ = [
    "MAX_SECUENCIA_OFICINA",
    "MAX_PREFIJO",
    "PREFIJO_SERIES",
    "CambioDeModo",
    "EstadoLibro",
    "EstadoOficina",
    "LibroNoDisponible",
    "LibroVigente",
    "ModoNumeracion",
    "cambio_de_modo",
    "elegir_libro",
    "format_numero_oficina",
    "modo_vigente",
    "nombre_libro",
    "serie_oficina",
    "validate_codigo_oficina",
]

# Every counter series of asientos starts so (``domain.serie_de`` and serie_oficina):
# an entity has numbered something in a year iff one of these counters is past 0.
PREFIJO_SERIES = "asiento-"
# The prefijo has three digits, and the number at most 20 characters (SICRES 3.0).
MAX_PREFIJO = 999
MAX_SECUENCIA_OFICINA = 9_999_999_999


class ModoNumeracion(StrEnum):
    """Whether an entity numbers with one sequence per tipo or one per oficina and tipo."""

    CENTRAL = "central"
    OFICINA = "oficina"


class EstadoOficina(StrEnum):
    """An oficina registers only while active."""

    ACTIVA = "activa"
    CERRADA = "cerrada"


class EstadoLibro(StrEnum):
    """A libro takes asientos only while open."""

    ABIERTO = "abierto"
    CERRADO = "cerrado"


def validate_codigo_oficina(code: str) -> str:
    """The DIR3 code of an oficina de registro: a DIR3 code starting with ``O``."""
    normalized = validate_dir3(code)
    if not normalized.startswith("O"):
        raise ValueError("código de oficina no válido: los códigos DIR3 de oficina empiezan por O")
    return normalized


def serie_oficina(tipo: TipoAsiento, oficina: str) -> str:
    """The counter series of one oficina's book of a tipo (per-office numbering)."""
    return f"{PREFIJO_SERIES}{tipo.value}-{oficina}"


def format_numero_oficina(tipo: TipoAsiento, anio: int, prefijo: int, secuencia: int) -> str:
    """Number of an asiento numbered per oficina, e.g. ``E/2026/002000012``."""
    if not 1 <= prefijo <= MAX_PREFIJO:
        raise ValueError(f"el prefijo de oficina va de 1 a {MAX_PREFIJO}")
    if not 1 <= secuencia <= MAX_SECUENCIA_OFICINA:
        raise ValueError(f"la secuencia por oficina va de 1 a {MAX_SECUENCIA_OFICINA}")
    return f"{tipo.letra}/{anio:04d}/{prefijo:03d}{secuencia:06d}"


def modo_vigente(cambios: Iterable[tuple[int, ModoNumeracion]], anio: int) -> ModoNumeracion:
    """The mode of ``anio``: the latest change taking effect by then (central if none)."""
    vigentes = [(desde, modo) for desde, modo in cambios if desde <= anio]
    return max(vigentes)[1] if vigentes else ModoNumeracion.CENTRAL


@dataclass(frozen=True)
class CambioDeModo:
    """How to store a requested mode: drop changes from ``desde`` on, then maybe add one."""

    desde: int
    anadir: bool


def cambio_de_modo(
    cambios: Sequence[tuple[int, ModoNumeracion]],
    *,
    modo: ModoNumeracion,
    anio: int,
    ha_numerado: bool,
) -> CambioDeModo:
    """Plans a change of mode asked for in ``anio`` (see the module docstring).

    Whatever was scheduled from the effective year on is replaced by the new
    wish; a row is added only when the mode really changes then, so asking for
    the current mode cancels a scheduled change.
    """
    desde = anio + 1 if ha_numerado else anio
    anteriores = [(d, m) for d, m in cambios if d < desde]
    return CambioDeModo(desde=desde, anadir=modo_vigente(anteriores, desde) is not modo)


def nombre_libro(tipo: TipoAsiento, oficina: str | None) -> str:
    """How a libro is named to people: ``libro de entrada de la oficina O00002741``."""
    ambito = f"de la oficina {oficina}" if oficina else "central"
    return f"libro de {tipo.value} {ambito}"


@dataclass(frozen=True)
class LibroVigente:
    """A libro as registering sees it."""

    id: str
    tipo: TipoAsiento
    oficina: str | None
    estado: EstadoLibro


class LibroNoDisponible(Exception):
    """No open libro takes the asiento; the message names the libro (or its absence)."""


def elegir_libro(
    libros: Sequence[LibroVigente], *, tipo: TipoAsiento, oficina: str | None
) -> LibroVigente | None:
    """The libro an asiento of ``tipo`` registered at ``oficina`` goes into.

    None means the entity has opened no libro of that tipo: the implicit book,
    always open. Raises LibroNoDisponible when none applies or it is closed.
    """
    del_tipo = [libro for libro in libros if libro.tipo is tipo]
    if not del_tipo:
        return None
    propio = next((lb for lb in del_tipo if oficina and lb.oficina == oficina), None)
    libro = propio or next((lb for lb in del_tipo if lb.oficina is None), None)
    if libro is None:
        donde = f"para la oficina {oficina}" if oficina else "central"
        raise LibroNoDisponible(
            f"No hay libro de {tipo.value} {donde}: un administrador debe abrirlo."
        )
    if libro.estado is not EstadoLibro.ABIERTO:
        raise LibroNoDisponible(
            f"El {nombre_libro(libro.tipo, libro.oficina)} ({libro.id}) está cerrado."
        )
    return libro
