"""Bus consumers of the tramitador."""

from __future__ import annotations

from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.uow import UnitOfWork
from services.tramitador.expedientes import service


async def on_asiento_registrado(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """An asiento de entrada naming a known procedimiento opens its expediente."""
    await service.open_expediente_for_asiento(uow, event)


CONSUMERS = (
    ConsumerSpec(
        name="asientos",
        events=("registro.asiento.registrado.v1",),
        handler=on_asiento_registrado,
    ),
)
