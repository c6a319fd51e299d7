"""Bus consumers of the expediente electrónico: the sellado's answers to our signature
commands; our own phase changes and resolutions, which freeze a signed índice (and
archive or reopen); our own notification requests, which let the interesados download
the notified document."""

from __future__ import annotations

from services.common.bus.consumer import replies_to
from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec
from services.common.uow import UnitOfWork
from services.tramitador.eni import service

__all__ = ["CONSUMERS", "puede_traer_anexos"]

FASE_CAMBIADA = "tramitador.expediente.fase-cambiada.v1"
RESOLUCION_DICTADA = "tramitador.resolucion.dictada.v1"
NOTIFICACION_SOLICITAR = "tramitador.notificacion.solicitar.v1"
DOCUMENTO_ALMACENADO = "repositorio.documento.almacenado.v1"
EXPEDIENTE_INICIADO = "tramitador.expediente.iniciado.v1"


async def on_firma(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A signed (or refused) índice of ours is kept (or marked fallido)."""
    await service.registrar_firma(uow, event)


async def on_hito(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """Each closing of a phase, and the resolution, freezes a signed version of the índice
    (NTI de Expediente electrónico: the índice guarantees the expediente's integrity)."""
    data = event.data
    expediente_id = str(data["expediente_id"])
    if str(event.name) == RESOLUCION_DICTADA:
        await service.congelar_indice(uow, expediente_id=expediente_id, causa="resolucion")
        return
    # Entering a phase of state archivado transfers it to the archive (which freezes the
    # last índice); any other phase change freezes one, and reopens an archived one.
    if data.get("estado") == "archivado":
        await service.registrar_archivo(uow, expediente_id=expediente_id)
        return
    await service.registrar_reapertura(uow, expediente_id=expediente_id)
    if data.get("fase_anterior") is not None:
        await service.congelar_indice(
            uow, expediente_id=expediente_id, causa="fase", fase=data["fase_anterior"]
        )


async def on_notificacion(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A document sent to be notified becomes the interesados' to download."""
    documento_id = (event.data.get("documento") or {}).get("documento_id")
    if documento_id:
        await service.marcar_notificado(
            uow, expediente_id=str(event.data["expediente_id"]), documento_id=str(documento_id)
        )


async def on_anexo(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The anexos of the asiento that opened an expediente enter its foliado, whichever of
    the repositorio's stored document and the expediente's opening comes first."""
    if str(event.name) == DOCUMENTO_ALMACENADO:
        await service.recibir_anexo(uow, event.data)
    else:
        await service.foliar_anexos_del_asiento(
            uow,
            expediente_id=str(event.data["expediente_id"]),
            asiento_id=event.data.get("asiento_id"),
        )


def puede_traer_anexos(event: ReceivedEvent) -> bool:
    """Whether the event can bring an asiento's anexo into a foliado: a document stored
    as an asiento's anexo, or an expediente opened from an asiento. Every issued document
    (a justificante, a resolución) is stored too, with no such reference: refused before
    any transaction, as ``recibir_anexo`` and ``foliar_anexos_del_asiento`` would do
    nothing with it."""
    data = event.data
    if str(event.name) == DOCUMENTO_ALMACENADO:
        referencia = data.get("referencia")
        return isinstance(referencia, dict) and referencia.get("tipo") == "asiento"
    return bool(data.get("asiento_id"))


CONSUMERS = (
    ConsumerSpec(
        name="eni-firmas",
        events=(service.XML_FIRMADO, service.XML_RECHAZADO),
        handler=on_firma,
        wants=replies_to(service.SOLICITANTE),
    ),
    ConsumerSpec(name="eni-indices", events=(FASE_CAMBIADA, RESOLUCION_DICTADA), handler=on_hito),
    ConsumerSpec(name="eni-notificados", events=(NOTIFICACION_SOLICITAR,), handler=on_notificacion),
    ConsumerSpec(
        name="eni-anexos",
        events=(DOCUMENTO_ALMACENADO, EXPEDIENTE_INICIADO),
        handler=on_anexo,
        wants=puede_traer_anexos,
    ),
)
