"""The reconciler: picks up requests left half-way, on start and every so often.

A request that waits for another service's answer (a justificante being issued, a
time-stamp asked of the TSA, a step of an issuing saga) is a row in a pending
state. The bus delivers every message at least once, so such a row normally
moves on; it stalls only when its answer can no longer come: a message
dead-lettered after its last attempt, a process killed before this guarantee
existed, a peer that lost what it was doing. Services register a
:class:`StalledScanner` for each kind of request; the reconciler runs every
scanner, tenant by tenant, in one unit of work each, with a cut-off instant:
rows whose lease (the time their current attempt was asked for) is older than
``RECONCILER_STALLED_AFTER_SECONDS`` count as stalled.

A scanner claims rows with ``FOR UPDATE SKIP LOCKED`` and renews their lease in
the same transaction as the message that drives them on, so two replicas
running the reconciler never take the same request: the second skips the row
while the first holds it, and once the first commits the row is no longer stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.common.db import Database
from services.common.settings import Settings
from services.common.tenants import list_tenants
from services.common.uow import Actor, UnitOfWork

__all__ = ["Reconciler", "StalledScanner", "stalled_before"]

_log = logging.getLogger("consistorio.reconciler")

# Re-drives the tenant's requests whose lease started before the cut-off; answers how many.
ScanStalled = Callable[[UnitOfWork, datetime], Awaitable[int]]


def stalled_before(settings: Settings, now: datetime | None = None) -> datetime:
    """The instant before which a pending request's attempt counts as stalled.

    The same cut-off lets staff retry such a request by hand (``.../reintentar``)
    instead of being told it is still in progress.
    """
    return (now or datetime.now(UTC)) - timedelta(seconds=settings.reconciler_stalled_after_seconds)


@dataclass(frozen=True)
class StalledScanner:
    """One kind of request a service knows how to pick up again."""

    name: str
    scan: ScanStalled


class Reconciler:
    """Runs a service's stalled-request scanners on start and every ``period_seconds``."""

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        unit_of_work: Callable[[str, Actor], UnitOfWork],
        period_seconds: float,
        stalled_after_seconds: float,
        scanners: Sequence[StalledScanner] = (),
    ) -> None:
        self._service = service
        self._db = db
        self._unit_of_work = unit_of_work
        self._period = period_seconds
        self._stalled_after = timedelta(seconds=stalled_after_seconds)
        self.scanners: list[StalledScanner] = list(scanners)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def register(self, scanner: StalledScanner) -> None:
        """Adds a kind of request to pick up (a service's ``create_app`` calls it)."""
        self.scanners.append(scanner)

    def start(self) -> None:
        """Starts the loop: a first pass now, then one every period."""
        if self._task is None and self.scanners and self._period > 0:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=f"reconciler-{self._service}")

    async def stop(self) -> None:
        """Stops the loop; a pass in progress is abandoned (its transaction rolls back)."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run_once(self, *, now: datetime | None = None) -> int:
        """One pass of every scanner over every active tenant; answers how many were picked up."""
        cutoff = (now or datetime.now(UTC)) - self._stalled_after
        async with self._db.engine.connect() as conn:
            tenants = [t.ine_code for t in await list_tenants(conn) if t.activo]
        picked = 0
        for scanner in self.scanners:
            actor = Actor.system(f"{self._service}.reconciliador.{scanner.name}")
            for tenant in tenants:
                try:
                    async with self._unit_of_work(tenant, actor) as uow:
                        found = await scanner.scan(uow, cutoff)
                except Exception:
                    _log.exception("scanner %s failed for tenant %s", scanner.name, tenant)
                    continue
                if found:
                    _log.warning(
                        "%s: picked up %d stalled request(s) of tenant %s",
                        scanner.name,
                        found,
                        tenant,
                    )
                picked += found
        return picked

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:
                _log.exception("reconciler of %s failed", self._service)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._period)
