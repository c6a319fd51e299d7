"""Bus consumers of pagos: the tramitador's requests for a fee, and pagos' documents.

Built per app by :func:`consumers` because a document needs the council's name
and DIR3 code from the tenant directory the app's runtime holds, and is rendered in
the process's document workers.

``documentos`` reacts to pagos' own events (a liquidación issued asks for its
carta de pago; a payment asks for its justificante); ``emisiones`` records the
repositorio's answers to those requests.
"""

from __future__ import annotations

from services.common.bus.consumer import PermanentFailure, replies_to
from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.runtime import ConsumerSpec
from services.common.tenants import TenantDirectory
from services.common.uow import UnitOfWork
from services.pagos import documentos, service
from services.pagos.cartas import SOLICITANTE, Tipo

__all__ = ["consumers"]

_TIPO_DE_EVENTO = {
    service.LIQUIDACION_EMITIDA: Tipo.CARTA_DE_PAGO,
    service.PAGO_COMPLETADO: Tipo.JUSTIFICANTE_PAGO,
}


def consumers(
    tenants: TenantDirectory, documents: CpuPool | None = None
) -> tuple[ConsumerSpec, ...]:
    """pagos' consumers, bound to the tenant directory and the document workers.

    ``requerimientos`` takes the tramitador's ``pago.requerir`` command (its
    contract is the tramitador's) and issues one liquidación per solicitud.
    """

    async def on_requerir(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """The tramitador asks for the fees of an expediente."""
        await service.requerir_pago(uow, datos=event.data)

    async def on_liquidacion(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """A liquidación issued or paid: ask for its carta de pago or its justificante."""
        entidad = await tenants.get(event.tenant)
        if entidad is None:
            raise PermanentFailure(f"entidad {event.tenant} desconocida")
        await documentos.solicitar_documento(
            uow,
            liquidacion_id=str(event.data["liquidacion_id"]),
            tipo=_TIPO_DE_EVENTO[str(event.name)],
            entidad=entidad,
            documents=documents,
        )

    async def on_emision(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """The repositorio issued one of our documents, or could not."""
        await documentos.registrar_respuesta(uow, evento=str(event.name), datos=event.data)

    return (
        ConsumerSpec(name="requerimientos", events=(service.REQUERIR_PAGO,), handler=on_requerir),
        ConsumerSpec(
            name="documentos",
            events=(service.LIQUIDACION_EMITIDA, service.PAGO_COMPLETADO),
            handler=on_liquidacion,
            # It renders the carta or the justificante: run by the document workload.
            documents=True,
        ),
        ConsumerSpec(
            name="emisiones",
            events=(documentos.DOCUMENTO_EMITIDO, documentos.EMISION_FALLIDA),
            handler=on_emision,
            wants=replies_to(SOLICITANTE),
        ),
    )
