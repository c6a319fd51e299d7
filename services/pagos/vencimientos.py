"""The vencimiento scheduler: pending liquidaciones past their vencimiento become ``vencida``.

A liquidación is payable up to and including its vencimiento, a date in the
council's calendar; from the next local day it is ``vencida`` (a bank may still
collect it, and then it is ``pagada``). The day is the council's (the kernel's
:func:`~services.common.timezones.tenant_timezone`): Canarias expire an hour after
the peninsula.

Every replica runs one, as notificaciones' expiry does. A pass asks the database
which councils have pendientes that may be due (the SECURITY DEFINER function
``pagos.entidades_con_vencidas``, the one way across tenants, given a date no
council has reached yet), then, for each, expires in batches under that council's
row-level security, each batch one transaction. Exactly once with any number of
replicas: each batch locks its rows ``FOR UPDATE SKIP LOCKED`` and re-checks they
are still pending (:func:`services.pagos.service.marcar_vencidas`), so a row is
expired, audited and announced by the one transaction that locked it. No leader,
no advisory lock: a replica that dies mid-pass loses only its open batch, which the
next pass of any replica picks up.

"Daily" is the business rule; the pass runs every ``PAGOS_VENCIMIENTOS_INTERVALO_SEGUNDOS``
(an hour by default), so a council's liquidaciones expire within that long of its
local midnight, and a replica down at midnight costs nothing. The clock is injected:
tests drive it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from services.common.periodic import PeriodicPass
from services.common.runtime import ServiceRuntime
from services.common.timezones import tenant_timezone
from services.common.uow import Actor
from services.pagos import service
from services.pagos.models import ENTIDADES_CON_VENCIDAS_FN

__all__ = ["LOTE_MAXIMO", "Vencedor"]

# A batch's writes (update, an audit row and an outbox row each) travel at commit as one
# statement; this keeps it well under PostgreSQL's 32,767 parameters.
LOTE_MAXIMO = 500

_log = logging.getLogger("consistorio.pagos.vencimientos")
_ACTOR = Actor.system("vencimientos")


def _ahora() -> datetime:
    return datetime.now(UTC)


class Vencedor:
    """Expires overdue liquidaciones, in passes, on a timer or when told."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        reloj: Callable[[], datetime] = _ahora,
        lote: int = LOTE_MAXIMO,
        intervalo_segundos: float = 3600.0,
    ) -> None:
        self._runtime = runtime
        self._reloj = reloj
        self._lote = max(1, min(lote, LOTE_MAXIMO))
        self._intervalo = intervalo_segundos
        self._passes = PeriodicPass(
            lambda: self.una_pasada(),
            name="pagos-vencimientos",
            interval_seconds=intervalo_segundos,
            logger=_log,
            failed="vencimiento pass failed; retried on the next tick",
            done="expired %d liquidaciones",
        )

    async def _entidades(self, ahora: datetime) -> list[str]:
        """Councils with pendientes due before a day no time zone has reached (a superset)."""
        tope = ahora.astimezone(UTC).date() + timedelta(days=1)
        async with self._runtime.db.engine.connect() as conn:
            filas = await conn.execute(
                text(f"SELECT tenant_id FROM {ENTIDADES_CON_VENCIDAS_FN}(:tope)"), {"tope": tope}
            )
            return [tenant for (tenant,) in filas]

    async def vencer_entidad(
        self, tenant_id: str, *, ahora: datetime | None = None, actor: Actor = _ACTOR
    ) -> int:
        """Expires one council's overdue liquidaciones on its local day; answers how many."""
        momento = ahora or self._reloj()
        hoy = momento.astimezone(tenant_timezone(tenant_id)).date()
        total = 0
        while True:
            async with self._runtime.unit_of_work(tenant_id, actor) as uow:
                hechas = await service.marcar_vencidas(uow, hoy=hoy, limite=self._lote)
            total += hechas
            if hechas < self._lote:
                # Done, or the rest is held by another replica's transaction: it does them.
                return total

    async def una_pasada(self) -> int:
        """Expires what is overdue at the clock's instant in every council; answers how many."""
        ahora = self._reloj()
        total = 0
        for tenant_id in await self._entidades(ahora):
            total += await self.vencer_entidad(tenant_id, ahora=ahora)
        return total

    def start(self) -> None:
        """Runs passes every ``intervalo_segundos`` in the background (the first at once)."""
        if self._intervalo > 0:
            self._passes.start()

    async def stop(self) -> None:
        """Stops the background passes (an unfinished batch rolls back)."""
        await self._passes.stop()
