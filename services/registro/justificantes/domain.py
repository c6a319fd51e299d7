"""Pure rules of the justificante: its ENI type, its file name, its local date, the id of
each request to issue it. No I/O."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from functools import partial

from services.common.timezones import tenant_timezone
from services.registro import domain

# ENI "TD09 - Acuse de recibo": the receipt the register hands out for what it recorded.
TIPO_DOCUMENTAL = "TD09"


# The council itself produces the receipt, and it is an original, not a copy.
ORIGEN = "administracion"


ESTADO_ELABORACION = "EE01"


SOLICITANTE = "registro"


class EstadoJustificante(StrEnum):
    """Where the issuing of a justificante stands."""

    PENDIENTE = "pendiente"  # asked of the repositorio, not issued yet
    EMITIDO = "emitido"  # issued: it has a document, a version and a CSV
    FALLIDO = "fallido"  # the repositorio could not issue it; it may be asked for again


# Fixed, so a retried request for the same asiento carries the same id everywhere.
_SOLICITUDES = uuid.uuid5(uuid.NAMESPACE_URL, "https://consistorio.es/registro/justificantes")
# The id of each request for it: one rule for every request about an asiento (domain.py).
solicitud_id = partial(domain.solicitud_id, _SOLICITUDES)


def nombre_fichero(numero: str) -> str:
    """The file name of a justificante, e.g. ``justificante-E-2026-000001.pdf``."""
    return f"justificante-{numero.replace('/', '-')}.pdf"


def fecha_local(fecha_registro: datetime, ine_code: str) -> str:
    """The registration instant in the entity's legal time, with its zone named.

    E.g. ``23/11/2026 11:00:00 (Europe/Madrid, CET, UTC+01:00)``; Canarias keeps its own hour.
    """
    if fecha_registro.tzinfo is None:
        raise ValueError("la fecha de registro debe llevar zona horaria")
    zone = tenant_timezone(ine_code)
    local = fecha_registro.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%d/%m/%Y %H:%M:%S} ({zone.key}, {local.tzname()}, UTC{offset[:3]}:{offset[3:]})"
