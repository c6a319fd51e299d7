"""The registro's stalled requests, picked up again by the kernel's reconciler.

Two things every asiento gets by asking another service: its justificante (the
repositorio issues it) and its register time-stamp (the sellado's TSA). Each is a
row that stays ``pendiente`` until the answer comes. A row pending since before
the cut-off is asked for again as a new attempt, exactly as staff would with
``.../reintentar``: a late answer to the old attempt is then recognised by its
request id and ignored. An asiento older than the cut-off with no row at all
(its ``registrado`` event never reached the consumer) gets its first request.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import Table, select

from services.common.cpu import CpuPool
from services.common.errors import Conflict
from services.common.reconciler import StalledScanner
from services.common.uow import UnitOfWork
from services.registro.asientos.models import asientos
from services.registro.justificantes.domain import EstadoJustificante
from services.registro.justificantes.models import justificantes
from services.registro.justificantes.service import reintentar_justificante
from services.registro.sellos_tiempo.domain import EstadoSello
from services.registro.sellos_tiempo.models import sellos_tiempo
from services.registro.sellos_tiempo.service import reintentar_sello

__all__ = ["escaneres", "reanudar_justificantes", "reanudar_sellos_tiempo"]

_log = logging.getLogger("consistorio.registro.reconciliacion")

# Requests re-driven per tenant and pass: a large backlog drains over several passes.
LOTE = 50


async def _estancadas(uow: UnitOfWork, table: Table, pendiente: str, cutoff: datetime) -> list[str]:
    """Asientos whose request in ``table`` is pending since before ``cutoff``, or missing.

    Pending rows are locked (SKIP LOCKED: another replica's pass skips them); a
    missing row cannot be locked, but its first request has a fixed id and is
    inserted ON CONFLICT DO NOTHING, so two replicas asking at once ask once.
    """
    pendientes = (
        await uow.session.execute(
            select(table.c.asiento_id)
            .where(table.c.estado == pendiente, table.c.solicitado_en < cutoff)
            .order_by(table.c.solicitado_en)
            .limit(LOTE)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    sin_pedir = (
        await uow.session.execute(
            select(asientos.c.id)
            .outerjoin(table, table.c.asiento_id == asientos.c.id)
            .where(table.c.asiento_id.is_(None), asientos.c.fecha_registro < cutoff)
            .order_by(asientos.c.fecha_registro)
            .limit(LOTE)
        )
    ).scalars()
    return [str(asiento_id) for asiento_id in [*pendientes, *sin_pedir]]


async def _reanudar(
    uow: UnitOfWork,
    cutoff: datetime,
    *,
    table: Table,
    pendiente: str,
    retry: Callable[..., Awaitable[object]],
    what: str,
) -> int:
    """Asks again, through ``retry``, for each request of ``table`` stalled before ``cutoff``."""
    hechas = 0
    for asiento_id in await _estancadas(uow, table, pendiente, cutoff):
        try:
            await retry(uow, asiento_id=asiento_id, stalled_before=cutoff)
        except Conflict as exc:
            _log.warning("%s of asiento %s not asked again: %s", what, asiento_id, exc)
            continue
        hechas += 1
    return hechas


async def reanudar_justificantes(
    uow: UnitOfWork, cutoff: datetime, *, documents: CpuPool | None = None
) -> int:
    """Asks again for the tenant's justificantes stalled since before ``cutoff``."""
    return await _reanudar(
        uow,
        cutoff,
        table=justificantes,
        pendiente=EstadoJustificante.PENDIENTE.value,
        retry=functools.partial(reintentar_justificante, documents=documents),
        what="justificante",
    )


async def reanudar_sellos_tiempo(uow: UnitOfWork, cutoff: datetime) -> int:
    """Asks again for the tenant's register time-stamps stalled since before ``cutoff``."""
    return await _reanudar(
        uow,
        cutoff,
        table=sellos_tiempo,
        pendiente=EstadoSello.PENDIENTE.value,
        retry=reintentar_sello,
        what="time-stamp",
    )


def escaneres(documents: CpuPool | None) -> tuple[StalledScanner, ...]:
    """The registro's scanners; justificantes asked again render in ``documents``."""
    return (
        StalledScanner(
            "justificantes", functools.partial(reanudar_justificantes, documents=documents)
        ),
        StalledScanner("sellos-tiempo", reanudar_sellos_tiempo),
    )
