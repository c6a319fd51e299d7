"""What the registro's use cases share: the pending row of a request about an asiento.

The justificante (asked of the repositorio) and the time-stamp (asked of the sellado)
follow one pattern: a row per asiento, ``pendiente`` from the first request until the
other service answers, retried as a new attempt when it fails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.uow import UnitOfWork

__all__ = ["PENDIENTE", "primera_solicitud"]

# The state of a request sent and not answered yet, the same word in every feature.
PENDIENTE = "pendiente"


def primera_solicitud(
    uow: UnitOfWork, tabla: Table, *, asiento_id: str, solicitud_id: str, **campos: Any
) -> dict[str, Any]:
    """Records the first request about an asiento as a pending row of ``tabla``; answers it.

    The consumer and a staff member's retry (or a redelivery) may race for the first
    request: both send the same solicitud id, the first row wins, and the other service
    answers each solicitud once.
    """
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "asiento_id": asiento_id,
        "tenant_id": uow.tenant_id,
        "estado": PENDIENTE,
        "intento": 1,
        "solicitud_id": solicitud_id,
        "solicitado_en": now,
        **campos,
        "actualizado_en": now,
    }
    uow.defer(pg_insert(tabla).values(**row).on_conflict_do_nothing())
    return row
