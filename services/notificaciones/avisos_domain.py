"""The avisos of art. 41.6, pure: their texts, in Spanish and Valencian, and the retry rule.

An aviso tells that a notification is at the addressee's disposal and where to
open it; nothing else. It carries no name, no concepto, no document, no
expediente: email and SMS travel unprotected, and the law asks only for the
aviso (art. 41.6), whose absence does not invalidate the notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

__all__ = [
    "CanalAviso",
    "EstadoAviso",
    "Fallo",
    "FalloPermanente",
    "FalloTemporal",
    "Mensaje",
    "espera",
    "mensaje_email",
    "mensaje_sms",
]


class CanalAviso(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class EstadoAviso(StrEnum):
    """Where an aviso stands."""

    PENDIENTE = "pendiente"  # to be sent (again, after a temporary failure)
    ENVIANDO = "enviando"  # claimed by a sender: being sent now
    ENVIADO = "enviado"  # the server or provider accepted it
    FALLIDO = "fallido"  # permanently refused, or temporary failures exhausted
    INCIERTO = "incierto"  # the sender died between sending and recording: never resent


class Fallo(Exception):
    """An aviso was not accepted by the server or provider."""


class FalloTemporal(Fallo):
    """Not accepted now; the same aviso may be accepted later (retried with back-off)."""


class FalloPermanente(Fallo):
    """Refused for good (bad address, bad number, credentials): recorded, never retried."""


@dataclass(frozen=True)
class Mensaje:
    """The text of one aviso."""

    asunto: str
    cuerpo: str


_EMAIL = {
    "es": Mensaje(
        asunto="Aviso de notificación de {entidad}",
        cuerpo=(
            "{entidad} ha puesto a su disposición una notificación en su sede electrónica.\n\n"
            "Puede acceder a ella, con su identificación electrónica, en:\n{url}\n\n"
            "Este mensaje es solo un aviso, no la notificación. La notificación se entiende "
            "practicada cuando accede a su contenido y rechazada si pasan diez días naturales "
            "desde su puesta a disposición sin acceder a ella (art. 43 de la Ley 39/2015). "
            "La falta de este aviso no impide que la notificación sea válida (art. 41.6).\n\n"
            "No responda a este mensaje.\n"
        ),
    ),
    "va": Mensaje(
        asunto="Avís de notificació de {entidad}",
        cuerpo=(
            "{entidad} ha posat a la seua disposició una notificació en la seu electrònica.\n\n"
            "Hi pot accedir, amb la seua identificació electrònica, en:\n{url}\n\n"
            "Aquest missatge és només un avís, no la notificació. La notificació s'entén "
            "practicada quan accedeix al seu contingut i rebutjada si passen deu dies naturals "
            "des de la posada a disposició sense accedir-hi (art. 43 de la Llei 39/2015). "
            "La falta d'aquest avís no impedeix que la notificació siga vàlida (art. 41.6).\n\n"
            "No responga a aquest missatge.\n"
        ),
    ),
}

_SMS = {
    "es": "{entidad}: tiene una notificación a su disposición en la sede electrónica {url}",
    "va": "{entidad}: té una notificació a la seua disposició en la seu electrònica {url}",
}


def mensaje_email(idioma: str, *, entidad: str, url: str) -> Mensaje:
    """The email aviso in ``idioma`` (es, va; Spanish otherwise)."""
    plantilla = _EMAIL.get(idioma, _EMAIL["es"])
    return Mensaje(
        asunto=plantilla.asunto.format(entidad=entidad),
        cuerpo=plantilla.cuerpo.format(entidad=entidad, url=url),
    )


def mensaje_sms(idioma: str, *, entidad: str, url: str) -> str:
    """The SMS aviso in ``idioma`` (es, va; Spanish otherwise)."""
    return _SMS.get(idioma, _SMS["es"]).format(entidad=entidad, url=url)


def espera(intento: int, *, base_segundos: float) -> timedelta:
    """How long to wait after the ``intento``-th failed attempt: base, 2·base, 4·base..."""
    if intento < 1:
        raise ValueError("el intento empieza en 1")
    return timedelta(seconds=base_segundos * 2 ** (intento - 1))
