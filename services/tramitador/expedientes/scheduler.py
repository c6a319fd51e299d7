"""The scheduler that acts when plazos expire (silencio, desistimiento, caducidad).

Every replica of the tramitador runs one. A pass looks, council by council, for open
plazos whose last day is over and hands each to ``service.vencer_plazo`` in a
transaction of its own; that use case locks the plazo with SKIP LOCKED and marks it
processed together with its effect, so two replicas never act on one plazo twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date

from sqlalchemy import select

from services.common.db import tenant_transaction
from services.common.runtime import ServiceRuntime
from services.common.tenants import tenants_table
from services.common.uow import Actor
from services.tramitador.expedientes import service
from services.tramitador.expedientes.domain import EstadoPlazo
from services.tramitador.expedientes.models import plazos
from services.tramitador.expedientes.motor import hoy_de

__all__ = ["Programador"]

_log = logging.getLogger("consistorio.tramitador.plazos")
LOTE = 200


class Programador:
    """Runs passes over expired plazos every ``cada`` seconds while started."""

    def __init__(self, runtime: ServiceRuntime, *, cada: float = 60.0) -> None:
        self._runtime = runtime
        self._cada = cada
        self._task: asyncio.Task[None] | None = None

    async def pasada(self, *, hoy: date | None = None, entidades: list[str] | None = None) -> int:
        """One pass over every active council (or only ``entidades``); how many plazos
        this replica acted on."""
        db = self._runtime.db
        async with db.engine.connect() as conn:
            codes = (
                (
                    await conn.execute(
                        select(tenants_table.c.ine_code).where(tenants_table.c.activo.is_(True))
                    )
                )
                .scalars()
                .all()
            )
        if entidades is not None:
            codes = [c for c in codes if c in entidades]
        hechos = 0
        for tenant in codes:
            dia = hoy or hoy_de(tenant)
            async with tenant_transaction(db, tenant) as session:
                vencidos = (
                    (
                        await session.execute(
                            select(plazos.c.id)
                            .where(
                                plazos.c.tenant_id == tenant,
                                plazos.c.estado == EstadoPlazo.ABIERTO.value,
                                plazos.c.vencimiento < dia,
                            )
                            .order_by(plazos.c.vencimiento)
                            .limit(LOTE)
                        )
                    )
                    .scalars()
                    .all()
                )
            for plazo_id in vencidos:
                actor = Actor.system("plazos")
                async with self._runtime.unit_of_work(tenant, actor) as uow:
                    if await service.vencer_plazo(
                        uow,
                        plazo_id=plazo_id,
                        hoy=dia,
                        documents=self._runtime.document_workers,
                    ):
                        hechos += 1
        return hechos

    def start(self) -> None:
        """Starts the periodic passes in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="tramitador-plazos")

    async def stop(self) -> None:
        """Stops the passes (a pass under way is cancelled; its transaction rolls back)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.pasada()
            except Exception:
                _log.exception("pass over expired plazos failed; retrying later")
            await asyncio.sleep(self._cada)
