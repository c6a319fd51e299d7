"""The expiry scheduler: electronic notifications ten days at disposal become ``expirada``.

Every replica runs one. A pass asks the database which notifications of any
tenant are due at the clock's instant (the SECURITY DEFINER function
``notificaciones.vencidas``, the one way across tenants), then expires them in
one transaction per tenant and batch. Exactly once with any number of replicas:
each transaction locks its rows ``FOR UPDATE SKIP LOCKED`` and re-checks that they
are still at disposal, so a row is expired, audited and announced by the one
transaction that locked it, and the others skip it. No leader election, no
advisory lock: a replica that dies mid-pass loses only its uncommitted batch,
which the next pass of any replica picks up.

The instant is the clock's, not the database's: tests and the benchmark drive it.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import text

from services.common.periodic import PeriodicPass
from services.common.runtime import ServiceRuntime
from services.common.uow import Actor
from services.notificaciones import service
from services.notificaciones.clock import Clock
from services.notificaciones.models import VENCIDAS_FN

__all__ = ["LOTE_MAXIMO", "Vencedor"]

# A batch's writes (update, audit, outbox, time-stamp requests) travel at commit as one
# statement, about 21 parameters a notification: this keeps it under PostgreSQL's 32,767.
LOTE_MAXIMO = 1000

_log = logging.getLogger("consistorio.notificaciones.vencimientos")
_ACTOR = Actor.system("vencimientos")


class Vencedor:
    """Expires due notifications, in passes, on a timer or when told."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        clock: Clock,
        *,
        lote: int = 1000,
        intervalo_segundos: float = 1.0,
    ) -> None:
        self._runtime = runtime
        self._clock = clock
        self._lote = min(lote, LOTE_MAXIMO)
        self._passes = PeriodicPass(
            lambda: self.una_pasada(),
            name="notificaciones-vencimientos",
            interval_seconds=intervalo_segundos,
            logger=_log,
            failed="expiry pass failed; retried on the next tick",
            done="expired %d notifications",
        )

    async def _vencidas(self) -> dict[str, list[str]]:
        """The ids due now, by tenant (at most one batch)."""
        async with self._runtime.db.engine.connect() as conn:
            rows = await conn.execute(
                text(f"SELECT tenant_id, id FROM {VENCIDAS_FN}(:ahora, :limite)"),
                {"ahora": self._clock.now(), "limite": self._lote},
            )
            por_entidad: dict[str, list[str]] = defaultdict(list)
            for tenant_id, ident in rows:
                por_entidad[tenant_id].append(str(ident))
        return por_entidad

    async def una_pasada(self) -> int:
        """Expires what is due at the clock's instant, batch after batch; answers how many."""
        total = 0
        while True:
            ahora = self._clock.now()
            por_entidad = await self._vencidas()
            if not por_entidad:
                return total
            hechas = 0
            for tenant_id, ids in por_entidad.items():
                async with self._runtime.unit_of_work(tenant_id, _ACTOR) as uow:
                    hechas += await service.vencer(uow, ids=ids, ahora=ahora)
            total += hechas
            if hechas == 0:
                # Every due row is held by another replica's transaction: it will do them.
                return total

    def start(self) -> None:
        """Runs passes every ``intervalo_segundos`` in the background."""
        self._passes.start()

    async def stop(self) -> None:
        """Stops the background passes (an unfinished batch rolls back)."""
        await self._passes.stop()
