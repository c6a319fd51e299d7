"""The composition root: wires settings, database, transport, auth and services.

Nothing is built at import time; :func:`build_platform` makes everything a
process needs for the services it runs, and :meth:`Platform.close` undoes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from services.catalog import SERVICES, all_migrations
from services.common.auth import JwksKeySource, TokenVerifier
from services.common.bus.amqp import AmqpTransport
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.transport import Transport
from services.common.contracts import ContractRegistry
from services.common.cpu import CpuPool
from services.common.db import Database, asyncpg_url
from services.common.devkeys import ensure_dev_signing_key
from services.common.migrations_support import upgrade_all
from services.common.runtime import ServiceRuntime, document_pool
from services.common.settings import Settings
from services.common.tenants import DEMO_TENANTS, TenantDirectory, add_tenant

__all__ = ["Platform", "build_platform", "build_transport", "migrate", "seed_demo_tenants"]


def build_transport(settings: Settings) -> Transport:
    """RabbitMQ when AMQP_URL is set, else the in-process bus of embedded mode."""
    if settings.amqp_url:
        return AmqpTransport(
            settings.amqp_url,
            exchange=settings.bus_exchange,
            prefetch=settings.bus_prefetch,
            queue_type=settings.bus_queue_type,
            tenant_concurrency=settings.bus_tenant_concurrency,
        )
    return InProcessTransport(
        prefetch=settings.bus_prefetch, tenant_concurrency=settings.bus_tenant_concurrency
    )


def jwks_source(settings: Settings) -> str:
    """AUTH_JWKS, or the development key under the data dir outside production."""
    if settings.auth_jwks:
        return settings.auth_jwks
    return str(ensure_dev_signing_key(settings.keys_dir))


async def migrate(settings: Settings) -> None:
    """Applies every Alembic history as the owner (in a thread: Alembic is blocking)."""
    assert settings.database_url, "DATABASE_URL is not set"
    await asyncio.to_thread(
        upgrade_all,
        all_migrations(),
        owner_url=settings.database_url,
        app_role=settings.database_app_role,
        app_password=settings.database_app_password,
    )


async def seed_demo_tenants(settings: Settings) -> None:
    """Adds the two demo entidades locales (idempotent)."""
    assert settings.database_url
    engine = create_async_engine(asyncpg_url(settings.database_url))
    try:
        async with engine.begin() as conn:
            for tenant in DEMO_TENANTS:
                await add_tenant(conn, tenant)
    finally:
        await engine.dispose()


@dataclass
class Platform:
    """The wired parts of one process: shared database, transport, verifier, services."""

    settings: Settings
    db: Database
    transport: Transport
    verifier: TokenVerifier
    contracts: ContractRegistry
    tenants: TenantDirectory
    worker_db: Database | None = None
    # One pool of document workers for every service of the process.
    documents: CpuPool | None = None
    runtimes: dict[str, ServiceRuntime] = field(default_factory=dict)
    apps: dict[str, FastAPI] = field(default_factory=dict)

    async def start(self) -> None:
        """Subscribes every service's consumers, then starts relays and reconcilers."""
        for runtime in self.runtimes.values():
            await runtime.subscribe()
        for runtime in self.runtimes.values():
            await runtime.start()

    def start_documents(self) -> None:
        """Starts the document workers now, for a long-running process (``up``, ``serve``):
        the first document then finds them loaded. Tests and one-off commands leave them
        to start on first use."""
        if self.documents is not None and self.documents.preload:
            self.documents.start()

    async def stop_runtimes(self, *, grace: float = 10.0) -> None:
        """Stops every relay and reconciler at once; a batch still running after
        ``grace`` s is abandoned (its rows stay in the outbox for the next start)."""
        await asyncio.gather(*(runtime.stop(grace=grace) for runtime in self.runtimes.values()))

    async def close(self, *, grace: float = 10.0) -> None:
        """Stops the runtimes, then the transport, then the document workers and the
        database pool.

        Each step waits at most ``grace`` s: consumers' handlers still running then are
        cancelled, their messages unacked (RabbitMQ keeps them; on the in-process bus
        their outbox rows stay unsent), so nothing they had not committed is lost.
        """
        await self.stop_runtimes(grace=grace)
        await self.transport.close(grace=grace)
        if self.documents is not None:
            self.documents.close()
        await self.db.dispose()
        if self.worker_db is not None:
            await self.worker_db.dispose()


async def build_platform(
    settings: Settings, service_names: Sequence[str], *, transport: Transport | None = None
) -> Platform:
    """Wires the named services; the transport is started, the apps are not yet serving."""
    db = Database(
        settings.app_database_url(),
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout_seconds,
    )
    # Background work waits for a connection as long as it takes: it has no client.
    worker_db = Database(
        settings.app_database_url(), pool_size=settings.database_worker_pool_size, label="workers"
    )
    tenants = TenantDirectory(db, cache_seconds=settings.tenant_cache_seconds)
    verifier = TokenVerifier(
        JwksKeySource(jwks_source(settings)),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        algorithms=settings.auth_algorithms,
        tenant_is_active=tenants.is_active,
    )
    bus = transport or build_transport(settings)
    await bus.start()
    contracts = ContractRegistry.load()
    definitions = [SERVICES[name]() for name in service_names]
    preload = sorted({module for d in definitions for module in d.document_modules})
    documents = document_pool(settings, preload)
    platform = Platform(settings, db, bus, verifier, contracts, tenants, worker_db, documents)
    for definition in definitions:
        name = definition.name
        runtime = ServiceRuntime(
            name=name,
            settings=settings,
            db=db,
            tables=definition.tables,
            contracts=contracts,
            transport=bus,
            verifier=verifier,
            consumers=definition.consumers,
            tenants=tenants,
            worker_db=worker_db,
            documents=documents,
        )
        platform.runtimes[name] = runtime
        platform.apps[name] = definition.create_app(runtime)
    return platform
