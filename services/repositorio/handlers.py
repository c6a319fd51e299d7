"""Bus consumers of the repositorio: the almacenar, emitir and consultar commands, and the
replies of the issuing saga.

Built per app by :func:`consumers` because they need the app's blob store,
which exists only once the app is wired (and which tests may swap on the app).
"""

from __future__ import annotations

from collections.abc import Callable

from services.common.bus.consumer import replies_to
from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.runtime import ConsumerSpec
from services.common.settings import Settings
from services.common.uow import UnitOfWork
from services.repositorio import service
from services.repositorio.emision import service as emision
from services.repositorio.storage import BlobStore


def consumers(
    store: Callable[[], BlobStore], settings: Settings, documents: CpuPool | None = None
) -> tuple[ConsumerSpec, ...]:
    """The repositorio's consumers; ``store`` answers the app's blob store when called.

    Parsing and stamping PDFs runs in ``documents`` (the process's document workers):
    ``emitir`` and ``codigos`` are document consumers, with few deliveries in flight.
    """
    # What the sellado accepts bounds what can be issued; the repositorio's own limit too.
    max_bytes = min(settings.sellado_max_pdf_bytes, settings.repositorio_max_bytes)

    async def on_emitir(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Another service asks to store and issue a PDF."""
        await emision.on_emitir_documento(
            uow, event, store=store(), max_bytes=max_bytes, documents=documents
        )

    async def on_almacenar(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Another service asks to store a file as a documento under an id it chose."""
        await service.almacenar_documento(
            uow, event, store=store(), max_bytes=settings.repositorio_max_bytes
        )

    async def on_reservado(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """The csv service reserved a code for one of our emisiones."""
        await emision.on_codigo_reservado(
            uow, event, store=store(), max_bytes=max_bytes, documents=documents
        )

    async def on_sello(uow: UnitOfWork, event: ReceivedEvent) -> None:
        """The sellado sealed, or refused, one of our stamped PDFs."""
        if str(event.name) == emision.DOCUMENTO_SELLADO:
            await emision.on_documento_sellado(uow, event, store=store())
        else:
            await emision.on_documento_rechazado(uow, event)

    return (
        ConsumerSpec(
            name="almacenar",
            events=(service.ALMACENAR_DOCUMENTO,),
            handler=on_almacenar,
        ),
        ConsumerSpec(
            name="emitir", events=(emision.EMITIR_DOCUMENTO,), handler=on_emitir, documents=True
        ),
        ConsumerSpec(
            name="codigos",
            events=(emision.CODIGO_RESERVADO,),
            handler=on_reservado,
            documents=True,
        ),
        ConsumerSpec(
            name="consultas",
            events=(emision.CONSULTAR_DOCUMENTO,),
            handler=emision.responder_consulta,
        ),
        ConsumerSpec(
            name="sellos",
            events=(emision.DOCUMENTO_SELLADO, emision.DOCUMENTO_RECHAZADO),
            handler=on_sello,
            wants=replies_to(emision.SOLICITANTE),
        ),
    )
