"""Bus consumers of the registro: the justificante of every asiento.

``justificantes`` asks the repositorio to issue the receipt of each asiento the
registro records; ``emisiones`` records what the repositorio answers (issued, or
failed and why), for the requests this register made.
"""

from __future__ import annotations

from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.uow import UnitOfWork
from services.registro import sello_tiempo, service


async def on_asiento_registrado(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """Every asiento gets its justificante: render it and ask the repositorio to issue it."""
    await service.request_justificante(uow, event)


async def on_emision(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The repositorio's answer to an issuing request: issued or failed."""
    if str(event.name) == service.DOCUMENTO_EMITIDO:
        await service.record_justificante_emitido(uow, event)
    else:
        await service.record_emision_fallida(uow, event)


CONSUMERS = (
    ConsumerSpec(
        name="justificantes",
        events=(service.ASIENTO_REGISTRADO,),
        handler=on_asiento_registrado,
    ),
    ConsumerSpec(
        name="emisiones",
        events=(service.DOCUMENTO_EMITIDO, service.EMISION_FALLIDA),
        handler=on_emision,
    ),
    # The register date-time time-stamped by the sellado's TSA (sello_tiempo.py).
    ConsumerSpec(
        name="sellos-tiempo",
        events=(service.ASIENTO_REGISTRADO,),
        handler=sello_tiempo.request_sello,
    ),
    ConsumerSpec(
        name="sellos-tiempo-respuestas",
        events=(sello_tiempo.SELLO_EMITIDO, sello_tiempo.SELLO_RECHAZADO),
        handler=sello_tiempo.record_reply,
    ),
)
