"""Bus consumers of notificaciones: time-stamp replies, and the acuses of outcomes.

The sellado's replies need nothing but the unit of work (static ``CONSUMERS``);
the acuses need the tenant directory (the entity's name and DIR3 code go on the
document), so :func:`consumers` binds them when the app is built. The command
``tramitador.notificacion.solicitar.v1`` belongs to the tramitador's contracts,
and its consumer comes with them.
"""

from __future__ import annotations

from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.tenants import TenantDirectory
from services.common.uow import UnitOfWork
from services.notificaciones import acuses, evidencias, service

__all__ = ["CONSUMERS", "consumers"]

CONSUMERS: tuple[ConsumerSpec, ...] = (
    ConsumerSpec(
        name="sellos-tiempo",
        events=(evidencias.SELLO_EMITIDO, evidencias.SELLO_RECHAZADO),
        handler=evidencias.registrar_sello,
    ),
)


def consumers(tenants: TenantDirectory) -> tuple[ConsumerSpec, ...]:
    """Every consumer of the service, the acuses bound to the tenant directory."""

    async def on_resultado(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """A notification reached its outcome: its acuse is to be issued."""
        await acuses.pedir_acuse(uow, event, tenants=tenants)

    return (
        *CONSUMERS,
        ConsumerSpec(
            name="acuses",
            events=(service.PRACTICADA, service.RECHAZADA, service.EXPIRADA),
            handler=on_resultado,
        ),
        ConsumerSpec(
            name="emisiones",
            events=(acuses.DOCUMENTO_EMITIDO, acuses.EMISION_FALLIDA),
            handler=acuses.registrar_emision,
        ),
    )
