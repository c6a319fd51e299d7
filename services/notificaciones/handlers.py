"""Bus consumers of notificaciones: the sellado's answers to the time-stamp requests.

The command ``tramitador.notificacion.solicitar.v1`` belongs to the tramitador's
contracts, and its consumer comes with them; staff create notifications over the
API meanwhile.
"""

from __future__ import annotations

from services.common.runtime import ConsumerSpec
from services.notificaciones import evidencias

__all__ = ["CONSUMERS"]

CONSUMERS: tuple[ConsumerSpec, ...] = (
    ConsumerSpec(
        name="sellos-tiempo",
        events=(evidencias.SELLO_EMITIDO, evidencias.SELLO_RECHAZADO),
        handler=evidencias.registrar_sello,
    ),
)
