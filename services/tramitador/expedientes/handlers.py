"""Bus consumers of the expedientes: asientos that open them, answers they wait for, and
the failures of what they asked for (incidencias).

An answer may take an action that issues a document: :func:`consumers` binds the
process's document workers, where it is rendered. The consumers stay cheap ones (not
``documents=True``): rendering is an occasional step of an answer, and the expediente
must not wait behind the document queues.
"""

from __future__ import annotations

from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.runtime import ConsumerSpec
from services.common.uow import UnitOfWork
from services.tramitador.expedientes import service

__all__ = ["CONSUMERS", "FALLOS", "RESPUESTAS", "consumers"]

# Answers of later services (pagos, notificaciones) a phase may wait for.
RESPUESTAS = ("pagos.pago.completado.v1", "notificaciones.notificacion.practicada.v1")
# What they answer when they cannot carry a request out.
FALLOS = (service.NOTIFICACION_FALLIDA, service.REQUERIMIENTO_RECHAZADO)


async def on_asiento_registrado(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """An asiento de entrada naming a published procedure opens its expediente."""
    await service.abrir_expediente_por_asiento(uow, event)


async def on_fallo(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A notification or a fee that could not be made: the expediente records an incidencia."""
    await service.registrar_incidencia(uow, event)


def consumers(documents: CpuPool | None) -> tuple[ConsumerSpec, ...]:
    """The expedientes' consumers, rendering their documents in ``documents``."""

    async def on_respuesta(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """A payment or a notification an expediente waits for lets it go on."""
        await service.atender_respuesta(uow, event, documents=documents)

    return (
        ConsumerSpec(
            name="asientos",
            events=("registro.asiento.registrado.v1",),
            handler=on_asiento_registrado,
        ),
        ConsumerSpec(name="respuestas", events=RESPUESTAS, handler=on_respuesta),
        ConsumerSpec(name="incidencias", events=FALLOS, handler=on_fallo),
    )


# Without document workers (their documents rendered in a thread): the catalog's list.
CONSUMERS = consumers(None)
