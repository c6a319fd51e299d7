"""Bus consumers of the expediente electrónico: the sellado's answers to our signature
commands, and our own phase changes and resolutions, which freeze a signed índice."""

from __future__ import annotations

from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.uow import UnitOfWork
from services.tramitador.eni import service

__all__ = ["CONSUMERS", "FASE_CAMBIADA", "RESOLUCION_DICTADA"]

FASE_CAMBIADA = "tramitador.expediente.fase-cambiada.v1"
RESOLUCION_DICTADA = "tramitador.resolucion.dictada.v1"


async def on_firma(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A signed (or refused) índice of ours is kept (or marked fallido)."""
    await service.registrar_firma(uow, event)


async def on_hito(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """Each closing of a phase, and the resolution, freezes a signed version of the índice
    (NTI de Expediente electrónico: the índice guarantees the expediente's integrity)."""
    data = event.data
    if str(event.name) == RESOLUCION_DICTADA:
        causa, fase = "resolucion", None
    else:
        causa, fase = "fase", data.get("fase_anterior")
    await service.congelar_indice(
        uow, expediente_id=str(data["expediente_id"]), causa=causa, fase=fase
    )


CONSUMERS = (
    ConsumerSpec(
        name="eni-firmas", events=(service.XML_FIRMADO, service.XML_RECHAZADO), handler=on_firma
    ),
    ConsumerSpec(name="eni-indices", events=(FASE_CAMBIADA, RESOLUCION_DICTADA), handler=on_hito),
)
