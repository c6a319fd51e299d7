"""Bus consumers of the documents: the repositorio's replies to our emitir commands."""

from __future__ import annotations

from services.common.bus.consumer import replies_to
from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.uow import UnitOfWork
from services.tramitador.documentos import service
from services.tramitador.eni.service import foliar_emitido
from services.tramitador.expedientes.service import documento_emitido

__all__ = ["CONSUMERS"]


async def on_emision(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """An issued (or failed) document of an expediente gets its CSV (or its reason); an
    issued resolution is then sent to be notified."""
    documento = await service.registrar_emision(uow, event)
    if documento is not None and documento.estado == "emitido":
        # The issued document enters the expediente's foliado (ENI), then follows its course.
        await foliar_emitido(
            uow, expediente_id=documento.expediente_id, titulo=documento.titulo, emitido=event.data
        )
        await documento_emitido(uow, documento=documento)


CONSUMERS = (
    ConsumerSpec(
        name="emisiones",
        events=(service.DOCUMENTO_EMITIDO, service.EMISION_FALLIDA),
        handler=on_emision,
        wants=replies_to(service.SOLICITANTE),
    ),
)
