"""Bus consumers of notificaciones: time-stamp replies, and the acuses of outcomes.

The sellado's replies need nothing but the unit of work (static ``CONSUMERS``);
the acuses need the tenant directory (the entity's name and DIR3 code go on the
document) and the process's document workers (where the acuse is rendered), so
:func:`consumers` binds them when the app is built. ``solicitudes``
takes the tramitador's command ``tramitador.notificacion.solicitar.v1`` (the council's
name is the notification's emisor, the app's clock its instant) and asks the repositorio
about its document; ``consultas`` takes the answer and creates the notifications, or fails
them when the document does not exist.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common.bus.consumer import PermanentFailure, replies_to
from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.runtime import ConsumerSpec
from services.common.tenants import TenantDirectory
from services.common.uow import UnitOfWork
from services.notificaciones import acuses, evidencias, service
from services.notificaciones.clock import Clock

__all__ = ["CONSUMERS", "consumers"]

CONSUMERS: tuple[ConsumerSpec, ...] = (
    ConsumerSpec(
        name="sellos-tiempo",
        events=(evidencias.SELLO_EMITIDO, evidencias.SELLO_RECHAZADO),
        handler=evidencias.registrar_sello,
        wants=replies_to(evidencias.SOLICITANTE),
    ),
)


def consumers(
    tenants: TenantDirectory, reloj: Callable[[], Clock], documents: CpuPool | None = None
) -> tuple[ConsumerSpec, ...]:
    """Every consumer of the service, bound to the tenant directory, the app's clock and
    the document workers the acuses are rendered in (a thread when None)."""

    async def on_solicitud(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """The tramitador asks for a document of an expediente to be notified."""
        entidad = await tenants.get(uow.tenant_id)
        if entidad is None:
            raise PermanentFailure(f"la entidad {uow.tenant_id} no existe")
        await service.solicitar_notificacion(
            uow, datos=event.data, emisor=entidad.nombre, ahora=reloj().now()
        )

    async def on_consultado(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """The repositorio answered whether the document of a waiting command exists."""
        await service.atender_consulta(uow, datos=event.data, ahora=reloj().now())

    async def on_resultado(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """A notification reached its outcome: its acuse is to be issued."""
        await acuses.pedir_acuse(uow, event, tenants=tenants, documents=documents)

    return (
        *CONSUMERS,
        ConsumerSpec(
            name="solicitudes", events=(service.SOLICITAR_NOTIFICACION,), handler=on_solicitud
        ),
        ConsumerSpec(
            name="consultas", events=(service.DOCUMENTO_CONSULTADO,), handler=on_consultado
        ),
        ConsumerSpec(
            name="acuses",
            events=(service.PRACTICADA, service.RECHAZADA, service.EXPIRADA),
            handler=on_resultado,
            # It renders the acuse: its own prefetch, run by the document workload.
            documents=True,
        ),
        ConsumerSpec(
            name="emisiones",
            events=(acuses.DOCUMENTO_EMITIDO, acuses.EMISION_FALLIDA),
            handler=acuses.registrar_emision,
            wants=replies_to(acuses.SOLICITANTE),
        ),
    )
