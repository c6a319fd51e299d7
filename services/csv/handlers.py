"""Bus consumers of the csv service: the reservation command and the outcome of emisiones.

Built per app by :func:`consumers` because activating a code needs the tenant
directory (the entity's name goes on the public page) and replying needs the
public address, both of which the app's runtime holds.
"""

from __future__ import annotations

import logging

from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.settings import Settings
from services.common.tenants import TenantDirectory
from services.common.uow import UnitOfWork
from services.csv import service

__all__ = ["consumers"]

_log = logging.getLogger("consistorio.csv")


def consumers(tenants: TenantDirectory, settings: Settings) -> tuple[ConsumerSpec, ...]:
    """The csv service's consumers, bound to the tenant directory and the public address."""

    async def on_reservar(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Another service asks for a code for one of its documents."""
        data = event.data
        await service.reservar_codigo(
            uow,
            solicitud_id=str(data["solicitud_id"]),
            solicitante=str(data["solicitante"]),
            documento_id=str(data["documento_id"]),
            base_url=settings.public_base_url,
        )

    async def on_emision(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """The repositorio issued a document with one of our codes, or failed to."""
        if str(event.name) == service.DOCUMENTO_EMITIDO:
            tenant = await tenants.get(event.tenant)
            if tenant is None:
                # The page must still name somebody: the INE code is what we know.
                _log.warning("emitido for unknown tenant %s", event.tenant)
            entidad = tenant.nombre if tenant else f"Entidad {event.tenant}"
            await service.activar_codigo(uow, event.data, entidad=entidad)
        else:
            await service.anular_codigo(uow, event.data)

    return (
        ConsumerSpec(name="reservas", events=(service.RESERVAR_CODIGO,), handler=on_reservar),
        ConsumerSpec(
            name="emisiones",
            events=(service.DOCUMENTO_EMITIDO, service.EMISION_FALLIDA),
            handler=on_emision,
        ),
    )
