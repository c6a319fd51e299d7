"""Everything one service needs at run time, wired once by the composition root.

A :class:`ServiceRuntime` holds the service's database, kernel tables, contracts,
transport, token verifier and outbox relay; routes and consumers get it from the
app state instead of building anything at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.common.auth import TokenVerifier
from services.common.bus.consumer import EventConsumer, EventHandler
from services.common.bus.outbox import OutboxRelay
from services.common.bus.transport import Transport
from services.common.contracts import ContractRegistry
from services.common.db import Database
from services.common.kernel_tables import KernelTables
from services.common.settings import Settings
from services.common.tenants import TenantDirectory
from services.common.uow import Actor, UnitOfWork

__all__ = ["ConsumerSpec", "ServiceRuntime"]


@dataclass(frozen=True)
class ConsumerSpec:
    """A handler a service declares for some events (its queue is ``<service>.<name>``)."""

    name: str
    events: Sequence[str]
    handler: EventHandler


@dataclass
class ServiceRuntime:
    """The wired parts of one running service."""

    name: str
    settings: Settings
    db: Database
    tables: KernelTables
    contracts: ContractRegistry
    transport: Transport
    verifier: TokenVerifier
    consumers: Sequence[ConsumerSpec] = ()
    # The tenant registry, for services that need a tenant's name or DIR3 code.
    tenants: TenantDirectory | None = None
    # The pool of the relay and the consumers, apart from the one requests use, so that
    # a burst of bus work cannot starve requests of connections (nor the reverse).
    worker_db: Database | None = None
    relay: OutboxRelay = field(init=False)

    def __post_init__(self) -> None:
        self.relay = OutboxRelay(
            db=self.workers_db,
            tables=self.tables,
            transport=self.transport,
            poll_seconds=self.settings.outbox_poll_seconds,
        )

    @property
    def workers_db(self) -> Database:
        """The database of background work: its own pool when the platform gave one."""
        return self.worker_db or self.db

    def unit_of_work(self, tenant_id: str, actor: Actor) -> UnitOfWork:
        """Opens a use case's transaction for ``tenant_id`` (``async with``)."""
        return UnitOfWork(
            db=self.db,
            tables=self.tables,
            contracts=self.contracts,
            tenant_id=tenant_id,
            actor=actor,
            after_commit=self.relay.wake,
        )

    def event_consumer(self, spec: ConsumerSpec) -> EventConsumer:
        """Builds the consumer of one spec with this service's kernel."""
        return EventConsumer(
            name=f"{self.name}.{spec.name}",
            queue=f"{self.settings.bus_queue_prefix}{self.name}.{spec.name}",
            events=list(spec.events),
            handler=spec.handler,
            db=self.workers_db,
            tables=self.tables,
            contracts=self.contracts,
            max_attempts=self.settings.bus_max_attempts,
            retry_base_seconds=self.settings.bus_retry_base_seconds,
            after_commit=self.relay.wake,
        )

    async def start(self) -> None:
        """Starts the relay and subscribes the consumers (the transport is already started)."""
        self.relay.start()
        for spec in self.consumers:
            await self.event_consumer(spec).start(self.transport)

    async def stop(self) -> None:
        """Stops the relay; the composition root closes transport and database."""
        await self.relay.stop()
