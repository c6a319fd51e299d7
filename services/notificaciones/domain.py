"""The legal rules of a notification (Ley 39/2015, arts. 40-46), pure: no I/O, no framework.

- Which channel (art. 14.2 and 41.1): legal persons and the other subjects of art. 14.2
  are always notified electronically; natural persons only if they chose it.
- The lifecycle and its transitions (one table, :data:`TRANSICIONES`).
- Expiry of an electronic notification (art. 43.2): ten natural days after it was put
  at disposal, to the second, on the wall clock of the council's time zone.
- Postal delivery attempts (art. 42.2) and when they lead to the edictal publication
  in the BOE (art. 44).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from stdnum.es import cif as _cif
from stdnum.es import nie as _nie
from stdnum.es import nif as _nif

__all__ = [
    "DIAS_EXPIRACION",
    "Accion",
    "Canal",
    "Decision",
    "Estado",
    "Intento",
    "ResultadoIntento",
    "TransicionNoValida",
    "canal_de",
    "decidir_intento",
    "es_obligado_electronico",
    "fecha_legal",
    "identificador_valido",
    "transicion",
    "vencimiento",
]

# Art. 43.2: "transcurrieran diez días naturales desde la puesta a disposición".
DIAS_EXPIRACION = 10
# Art. 42.2: the second attempt within the three following days, on the other side of
# 15:00, with a margin of at least three hours between the two.
_DIAS_SEGUNDO_INTENTO = 3
_FRONTERA = time(15, 0)
_MARGEN = timedelta(hours=3)
# INE province codes of Canarias, which keeps its own hour (Atlantic/Canary).


class Canal(StrEnum):
    """How a notification reaches the interesado."""

    ELECTRONICO = "electronico"  # put at disposal in the carpeta (sede)
    POSTAL = "postal"  # on paper, by the postal operator, with acuse de recibo


class Estado(StrEnum):
    """Where a notification stands in its legal life."""

    PUESTA_DISPOSICION = "puesta_disposicion"  # electronic, waiting for access
    EN_REPARTO = "en_reparto"  # postal, delivery attempts under way
    PENDIENTE_PUBLICACION = "pendiente_publicacion"  # postal failed: to the BOE (art. 44)
    PRACTICADA = "practicada"  # accessed, delivered or published: effects start
    RECHAZADA = "rechazada"  # the interesado refused it (art. 41.5)
    EXPIRADA = "expirada"  # ten days without access: rejected by law (art. 43.2)
    FALLIDA = "fallida"  # could not be made at all (e.g. the document does not exist)

    @property
    def final(self) -> bool:
        """Whether nothing can happen to the notification any more."""
        return self in _FINALES


_FINALES = frozenset({Estado.PRACTICADA, Estado.RECHAZADA, Estado.EXPIRADA, Estado.FALLIDA})


class Accion(StrEnum):
    """What can happen to a notification."""

    ACCEDER = "acceder"
    RECHAZAR = "rechazar"
    VENCER = "vencer"
    ENTREGAR = "entregar"
    REHUSAR = "rehusar"
    AUSENTE = "ausente"  # a failed attempt that may be repeated once
    AGOTAR_REPARTO = "agotar_reparto"  # no more attempts: to the edictal publication
    PUBLICAR = "publicar"
    FALLAR = "fallar"


TRANSICIONES: dict[tuple[Estado, Accion], Estado] = {
    (Estado.PUESTA_DISPOSICION, Accion.ACCEDER): Estado.PRACTICADA,
    (Estado.PUESTA_DISPOSICION, Accion.RECHAZAR): Estado.RECHAZADA,
    (Estado.PUESTA_DISPOSICION, Accion.VENCER): Estado.EXPIRADA,
    (Estado.EN_REPARTO, Accion.ENTREGAR): Estado.PRACTICADA,
    (Estado.EN_REPARTO, Accion.REHUSAR): Estado.RECHAZADA,
    (Estado.EN_REPARTO, Accion.AUSENTE): Estado.EN_REPARTO,
    (Estado.EN_REPARTO, Accion.AGOTAR_REPARTO): Estado.PENDIENTE_PUBLICACION,
    (Estado.PENDIENTE_PUBLICACION, Accion.PUBLICAR): Estado.PRACTICADA,
    **{(estado, Accion.FALLAR): Estado.FALLIDA for estado in Estado if estado not in _FINALES},
}


class TransicionNoValida(ValueError):
    """The action is not possible in the notification's current state."""

    def __init__(self, estado: Estado, accion: Accion) -> None:
        super().__init__(f"una notificación en estado {estado.value} no admite '{accion.value}'")
        self.estado = estado
        self.accion = accion


def transicion(estado: Estado, accion: Accion) -> Estado:
    """The state ``accion`` leads to from ``estado``; :class:`TransicionNoValida` if none."""
    try:
        return TRANSICIONES[(estado, accion)]
    except KeyError:
        raise TransicionNoValida(estado, accion) from None


# --- the channel (art. 14.2, 41.1) ---


def identificador_valido(tipo: str, identificador: str) -> bool:
    """Whether an identity document is well formed with its check character."""
    if tipo == "NIF":
        return bool(_nif.is_valid(identificador) or _cif.is_valid(identificador))
    if tipo == "NIE":
        return bool(_nie.is_valid(identificador))
    if tipo == "CIF":
        return bool(_cif.is_valid(identificador))
    return tipo == "PASAPORTE" and 3 <= len(identificador) <= 20 and identificador.isalnum()


def es_obligado_electronico(tipo: str, identificador: str, *, otro_sujeto_14_2: bool) -> bool:
    """Art. 14.2: legal persons and entities without legal personality (a CIF: the NIF of
    an entity, first character a letter other than K, L, M, X, Y, Z) always; the other
    subjects of 14.2 (colegiados, public employees, their representatives) when staff
    says so, because an identity document alone does not tell."""
    if otro_sujeto_14_2:
        return True
    compact = identificador.strip().upper()
    return tipo in ("CIF", "NIF") and bool(_cif.is_valid(compact))


def canal_de(
    *,
    tipo: str,
    identificador: str,
    eligio_electronico: bool,
    otro_sujeto_14_2: bool = False,
    representante: tuple[str, str] | None = None,
) -> Canal:
    """The channel the law imposes or the interesado chose.

    A representative who is itself obliged (a gestoría, a law firm) makes the
    notification electronic too: it is the representative who will receive it.
    """
    if es_obligado_electronico(tipo, identificador, otro_sujeto_14_2=otro_sujeto_14_2):
        return Canal.ELECTRONICO
    if representante is not None and es_obligado_electronico(
        representante[0], representante[1], otro_sujeto_14_2=False
    ):
        return Canal.ELECTRONICO
    return Canal.ELECTRONICO if eligio_electronico else Canal.POSTAL


# --- legal time ---


def _aware(instante: datetime) -> datetime:
    if instante.tzinfo is None:
        raise ValueError("el instante debe llevar zona horaria")
    return instante


def fecha_legal(instante: datetime, zona: ZoneInfo) -> date:
    """The council's calendar day of an instant: the day the plazos count from (art. 30)."""
    return _aware(instante).astimezone(zona).date()


def _pared(instante: datetime, zona: ZoneInfo) -> datetime:
    """The naive wall-clock reading of ``instante`` in ``zona``."""
    return instante.astimezone(zona).replace(tzinfo=None)


def vencimiento(puesta: datetime, zona: ZoneInfo) -> datetime:
    """The instant (UTC) an electronic notification put at disposal at ``puesta`` expires.

    Ten natural days on the council's wall clock: put at 10:15:30 on 20 March, it
    expires at 10:15:30 on 30 March local time, whatever the change to summer time in
    between did to the number of elapsed hours. When that wall time does not exist
    (the spring gap) it expires when the clock jumps past it; when it exists twice
    (the autumn repeat) at the second one, so the change of hour never shortens the
    ten days against the interesado.
    """
    destino = _pared(_aware(puesta), zona) + timedelta(days=DIAS_EXPIRACION)
    antes = destino.replace(tzinfo=zona, fold=0).astimezone(UTC)
    despues = destino.replace(tzinfo=zona, fold=1).astimezone(UTC)
    if _pared(despues, zona) == destino:
        # Exists (once, or twice and fold=1 is the later one).
        return max(antes, despues) if _pared(antes, zona) == destino else despues
    if _pared(antes, zona) == destino:
        return antes
    # In the gap: the first instant whose wall reading is at or after the target.
    bajo, alto = min(antes, despues), max(antes, despues)
    while alto - bajo > timedelta(microseconds=1):
        medio = bajo + (alto - bajo) / 2
        if _pared(medio, zona) >= destino:
            alto = medio
        else:
            bajo = medio
    # Transitions fall on whole seconds; the search ends within a microsecond of one.
    return alto.replace(microsecond=0)


# --- postal delivery (art. 42.2, 44) ---


class ResultadoIntento(StrEnum):
    """What the postal operator reports of one delivery attempt."""

    ENTREGADA = "entregada"  # somebody took it (name and NIF recorded)
    AUSENTE = "ausente"  # nobody at the address
    DESCONOCIDO = "desconocido"  # the addressee is unknown there
    REHUSADA = "rehusada"  # the addressee refused it


@dataclass(frozen=True)
class Intento:
    """One recorded delivery attempt."""

    resultado: ResultadoIntento
    en: datetime
    valido: bool = True


@dataclass(frozen=True)
class Decision:
    """What one new attempt does: the action to take, whether it counts, and why not."""

    accion: Accion
    valido: bool = True
    motivo: str | None = None


def _segundo_intento_valido(primero: datetime, segundo: datetime, zona: ZoneInfo) -> str | None:
    """Why a second ``ausente`` attempt does not satisfy art. 42.2, or None if it does."""
    a, b = primero.astimezone(zona), segundo.astimezone(zona)
    dias = (b.date() - a.date()).days
    if not 1 <= dias <= _DIAS_SEGUNDO_INTENTO:
        return (
            "el segundo intento debe hacerse en uno de los tres días siguientes al primero "
            f"(se hizo {dias} días después)"
        )
    if (a.time() < _FRONTERA) == (b.time() < _FRONTERA):
        return (
            "si el primer intento fue antes de las 15:00 el segundo debe ser después, y viceversa"
        )
    hora_a = timedelta(hours=a.hour, minutes=a.minute, seconds=a.second)
    hora_b = timedelta(hours=b.hour, minutes=b.minute, seconds=b.second)
    if abs(hora_b - hora_a) < _MARGEN:
        return "entre las horas de los dos intentos debe haber al menos tres horas"
    return None


def decidir_intento(previos: Sequence[Intento], nuevo: Intento, zona: ZoneInfo) -> Decision:
    """What a new postal attempt leads to, given the ones recorded before.

    ``entregada`` practices the notification and ``rehusada`` rejects it (art. 41.5);
    ``desconocido`` sends it straight to the BOE (art. 44: the place is unknown).
    ``ausente`` is repeated once, within the three following days, on the other side
    of 15:00 and at least three hours apart (art. 42.2); a second attempt that does not
    meet that is recorded as not valid and another one is needed.
    """
    validos = [i for i in previos if i.valido]
    if validos and nuevo.en < max(i.en for i in validos):
        return Decision(Accion.AUSENTE, False, "el intento es anterior al último registrado")
    if nuevo.resultado is ResultadoIntento.ENTREGADA:
        return Decision(Accion.ENTREGAR)
    if nuevo.resultado is ResultadoIntento.REHUSADA:
        return Decision(Accion.REHUSAR)
    if nuevo.resultado is ResultadoIntento.DESCONOCIDO:
        return Decision(Accion.AGOTAR_REPARTO)
    ausentes = [i for i in validos if i.resultado is ResultadoIntento.AUSENTE]
    if not ausentes:
        return Decision(Accion.AUSENTE)
    motivo = _segundo_intento_valido(ausentes[0].en, nuevo.en, zona)
    if motivo is not None:
        return Decision(Accion.AUSENTE, False, motivo)
    return Decision(Accion.AGOTAR_REPARTO)
