"""Everything one service needs at run time, wired once by the composition root.

A :class:`ServiceRuntime` holds the service's database, kernel tables, contracts,
transport, token verifier, outbox relay and reconciler, and the document workers;
routes and consumers get it from the app state instead of building anything at
import time.

Documents (rendering, stamping, sealing) are made in :attr:`ServiceRuntime.documents`,
child processes at a lower priority, never on the event loop that serves requests and
the cheap consumers. The consumers that wait on them say so (``ConsumerSpec.documents``)
and take :attr:`Settings.document_prefetch` deliveries at a time, each on its own queue,
so a backlog of documents waits in its queue, not in front of an expediente.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.common.auth import TokenVerifier
from services.common.bus.consumer import EventConsumer, EventFilter, EventHandler
from services.common.bus.envelope import ReceivedEvent
from services.common.bus.outbox import OutboxRelay
from services.common.bus.transport import Transport
from services.common.contracts import ContractRegistry
from services.common.cpu import CpuPool
from services.common.db import Database
from services.common.kernel_tables import KernelTables
from services.common.metrics import observe_consumer_lag
from services.common.reconciler import Reconciler
from services.common.settings import Settings
from services.common.tenants import TenantDirectory
from services.common.uow import Actor, LeanUnitOfWork, UnitOfWork

__all__ = ["ConsumerSpec", "ServiceRuntime", "consumes", "document_pool"]


def document_pool(settings: Settings, preload: Sequence[str] = ()) -> CpuPool:
    """The document workers ``settings`` ask for: started on first use, at lower priority.

    A tenant may use every worker: documents come in the order of their queues, and a
    council alone on its installation (or in a quiet hour) should not wait on a slot
    that nobody else wants. What bounds one tenant is the document consumers' prefetch.
    ``preload``: the modules of the documents the process's services make.
    """
    return CpuPool(
        workers=settings.document_workers,
        per_tenant=settings.document_workers,
        nice=settings.document_worker_nice,
        preload=preload,
    )


@dataclass(frozen=True)
class ConsumerSpec:
    """A handler a service declares for some events (its queue is ``<service>.<name>``)."""

    name: str
    events: Sequence[str]
    handler: EventHandler
    # The handler waits on the document workers: few deliveries in flight at once.
    documents: bool = False
    # A test on the event alone: what it refuses is acknowledged before any transaction
    # (``bus.consumer.replies_to`` for a consumer of replies).
    wants: EventFilter | None = None


def consumes(role: str, spec: ConsumerSpec) -> bool:
    """Whether a process of ``role`` (``Settings.consumers_role``) consumes ``spec``'s queue."""
    return role == "all" or (role == "documents") == spec.documents


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
    # The document workers; the composition root shares one pool among the services of a
    # process, and a runtime built alone makes (and closes) its own.
    documents: CpuPool | None = None
    relay: OutboxRelay = field(init=False)
    # Services register their stalled-request scanners on it in create_app.
    reconciler: Reconciler = field(init=False)
    _subscribed: bool = field(default=False, init=False)
    _owns_documents: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.documents is None:
            self.documents = document_pool(self.settings)
            self._owns_documents = True
        self.relay = OutboxRelay(
            db=self.workers_db,
            tables=self.tables,
            transport=self.transport,
            poll_seconds=self.settings.outbox_poll_seconds,
        )
        self.reconciler = Reconciler(
            service=self.name,
            db=self.workers_db,
            unit_of_work=self.unit_of_work,
            period_seconds=self.settings.reconciler_period_seconds,
            stalled_after_seconds=self.settings.reconciler_stalled_after_seconds,
        )

    @property
    def document_workers(self) -> CpuPool:
        """The pool that renders, stamps and seals documents (child processes)."""
        assert self.documents is not None  # set in __post_init__
        return self.documents

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

    def lean_unit_of_work(self, tenant_id: str, actor: Actor, *, first: str = "") -> LeanUnitOfWork:
        """Opens a hot path's transaction on raw asyncpg (see services.common.lean)."""
        return LeanUnitOfWork(
            db=self.db,
            tables=self.tables,
            contracts=self.contracts,
            tenant_id=tenant_id,
            actor=actor,
            first=first,
            after_commit=self.relay.wake,
        )

    def event_consumer(self, spec: ConsumerSpec) -> EventConsumer:
        """Builds the consumer of one spec with this service's kernel."""
        service, handler = self.name, spec.handler

        async def observed(uow: UnitOfWork, event: ReceivedEvent) -> None:
            # Lag is taken when handling starts: how far behind the consumer runs.
            observe_consumer_lag(service, spec.name, event)
            await handler(uow, event)

        return EventConsumer(
            name=f"{self.name}.{spec.name}",
            queue=f"{self.settings.bus_queue_prefix}{self.name}.{spec.name}",
            events=list(spec.events),
            handler=observed,
            db=self.workers_db,
            tables=self.tables,
            contracts=self.contracts,
            max_attempts=self.settings.bus_max_attempts,
            retry_base_seconds=self.settings.bus_retry_base_seconds,
            after_commit=self.relay.wake,
            prefetch=self.settings.document_prefetch if spec.documents else None,
            wants=spec.wants,
        )

    async def subscribe(self) -> None:
        """Subscribes the consumers once (the transport is already started).

        A process running several services subscribes them all before any relay
        starts: on the in-process bus, a message published while its queue does not
        exist yet reaches nobody.
        """
        if self._subscribed:
            return
        self._subscribed = True
        for spec in self.consumers:
            if consumes(self.settings.consumers_role, spec):
                await self.event_consumer(spec).start(self.transport)

    async def start(self) -> None:
        """Subscribes the consumers, then starts the relay and the reconciler; idempotent."""
        await self.subscribe()
        self.relay.start()
        self.reconciler.start()

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stops the reconciler and the relay (its batch abandoned after ``grace`` s);
        the composition root closes transport and db."""
        await self.reconciler.stop()
        await self.relay.stop(grace=grace)
        if self._owns_documents:
            self.document_workers.close()
