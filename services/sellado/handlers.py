"""Bus consumers of the sellado: the seal, XML signature and time-stamp commands.

Built per process by :func:`consumers` because they need the process's trust
services (keys, TSA), which exist only once the app is wired.
"""

from __future__ import annotations

from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.tenants import TenantDirectory
from services.common.uow import UnitOfWork
from services.sellado import firma_xml, sello_tiempo, service
from services.sellado.trust import TrustServices


def consumers(
    trust: TrustServices, tenants: TenantDirectory, *, max_bytes: int
) -> tuple[ConsumerSpec, ...]:
    """The sellado's consumers, bound to this process's keys."""

    async def on_sellar(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Seals with the key of the envelope's tenant and replies by event."""
        tenant = await tenants.get(event.tenant)
        await service.responder_sellar_documento(
            uow, event, trust=trust, tenant=tenant, max_bytes=max_bytes
        )

    async def on_sellar_tiempo(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Time-stamps the hash with this process's TSA and replies by event."""
        tenant = await tenants.get(event.tenant)
        await sello_tiempo.responder_solicitar_sello(uow, event, tsa=trust.tsa, tenant=tenant)

    async def on_firmar_xml(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Signs the XML (XAdES-T) with the key of the envelope's tenant and replies."""
        tenant = await tenants.get(event.tenant)
        await firma_xml.responder_firmar_xml(uow, event, trust=trust, tenant=tenant)

    return (
        ConsumerSpec(
            name="firmar-xml",
            events=(firma_xml.FIRMAR_XML,),
            handler=on_firmar_xml,
            documents=True,
        ),
        ConsumerSpec(
            name="sellar", events=(service.SELLAR_DOCUMENTO,), handler=on_sellar, documents=True
        ),
        ConsumerSpec(
            name="sellar-tiempo",
            events=(sello_tiempo.SOLICITAR_SELLO,),
            handler=on_sellar_tiempo,
        ),
    )
