"""Bus consumers of justificantes: every asiento gets its receipt.

``justificantes`` asks the repositorio to issue the receipt of each asiento the
registro records, rendering it in the process's document workers (so it is a
document consumer: few deliveries in flight, on its own queue); ``emisiones``
records what the repositorio answers (issued, or failed and why), for the requests
this register made. Built per app by :func:`consumers`, since they need the
process's document workers.
"""

from __future__ import annotations

from services.common.bus.consumer import replies_to
from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.runtime import ConsumerSpec
from services.common.uow import UnitOfWork
from services.registro.asientos.service import ASIENTO_REGISTRADO
from services.registro.justificantes import service
from services.registro.justificantes.domain import SOLICITANTE


async def on_emision(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The repositorio's answer to an issuing request: issued or failed."""
    if str(event.name) == service.DOCUMENTO_EMITIDO:
        await service.registrar_justificante_emitido(uow, event)
    else:
        await service.registrar_emision_fallida(uow, event)


def consumers(documents: CpuPool | None) -> tuple[ConsumerSpec, ...]:
    """The justificantes' consumers, rendering in ``documents``."""

    async def on_asiento_registrado(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Every asiento gets its justificante: render it and ask the repositorio to issue it."""
        await service.solicitar_justificante(uow, event, documents=documents)

    return (
        ConsumerSpec(
            name="justificantes",
            events=(ASIENTO_REGISTRADO,),
            handler=on_asiento_registrado,
            documents=True,
        ),
        ConsumerSpec(
            name="emisiones",
            events=(service.DOCUMENTO_EMITIDO, service.EMISION_FALLIDA),
            handler=on_emision,
            wants=replies_to(SOLICITANTE),
        ),
    )
