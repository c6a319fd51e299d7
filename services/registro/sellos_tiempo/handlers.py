"""Bus consumers of time-stamps: the register date-time of every asiento stamped by the TSA."""

from __future__ import annotations

from services.common.bus.consumer import replies_to
from services.common.runtime import ConsumerSpec
from services.registro.asientos.service import ASIENTO_REGISTRADO
from services.registro.sellos_tiempo import service

CONSUMERS = (
    ConsumerSpec(
        name="sellos-tiempo",
        events=(ASIENTO_REGISTRADO,),
        handler=service.solicitar_sello,
    ),
    ConsumerSpec(
        name="sellos-tiempo-respuestas",
        events=(service.SELLO_EMITIDO, service.SELLO_RECHAZADO),
        handler=service.registrar_respuesta_sello,
        wants=replies_to(service.SOLICITANTE),
    ),
)
