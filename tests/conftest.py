"""Shared fixtures: a fresh migrated database on the real PostgreSQL, dev tokens,
tenants made per test, and the platform wired in-process or on RabbitMQ."""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.bootstrap import Platform, build_platform, migrate, seed_demo_tenants
from services.common.bus.inprocess import InProcessTransport
from services.common.db import asyncpg_url
from services.common.devkeys import ensure_dev_signing_key, issue_dev_token
from services.common.settings import Settings, load_settings
from services.common.tenants import Tenant, add_tenant
from tests.support.platforms import asgi_client, running_platform
from tests.support.servers import POSTGRES_ADMIN_URL, require_server

_tenant_codes = itertools.count(random.Random().randrange(10000, 90000, 1000))

# With pytest-xdist (make test), each worker has its own database (database_url), tmp
# tree and random ports, queue names and exchanges. The end-to-end tests that start the
# platform's processes (``consistorio up``, its CLI, a browser) still run one after
# another on one worker: two of them at once would halve the CPU of those whose bounds
# are times (every entrada complete within a minute of a kill -9, exit within the
# shutdown grace). The schemathesis run is e2e too but in-process and bounded by
# examples, not time: it is the longest single test and runs beside them.
_ONE_PLATFORM_AT_A_TIME = pytest.mark.xdist_group("platform-processes")
_BESIDE_THE_PLATFORMS = Path(__file__).parent / "fuzz"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Puts the end-to-end tests that start platform processes in one xdist group."""
    for item in items:
        if item.get_closest_marker("e2e") and _BESIDE_THE_PLATFORMS not in item.path.parents:
            item.add_marker(_ONE_PLATFORM_AT_A_TIME)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development signing key for the whole test session."""
    path = tmp_path_factory.mktemp("keys")
    ensure_dev_signing_key(path)
    return path


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A fresh database on the real PostgreSQL, migrated and seeded, dropped at the end."""
    admin = make_url(POSTGRES_ADMIN_URL)
    require_server("PostgreSQL", admin.host or "127.0.0.1", admin.port or 5432)
    name = f"consistorio_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    settings = load_settings(database_url=url, environment="test")
    await migrate(settings)
    await seed_demo_tenants(settings)
    yield url
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.fixture(scope="session")
def settings(
    database_url: str, keys_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at the test database and the session's dev key."""
    return load_settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        auth_jwks=str(keys_dir / "dev-jwks.json"),
        outbox_poll_seconds=0.2,
        bus_retry_base_seconds=0.01,
        bus_max_attempts=3,
        # Off: a pass at every platform start would pick up other tests' old rows;
        # the reconciler's own tests run it explicitly.
        reconciler_period_seconds=0,
        # The numbering tests send 50 registrations of one council at once to prove the
        # sequence gapless under contention, past production's admission bound; the
        # admission tests set their own bounds.
        admission_max_in_flight_per_tenant=64,
        # Each in-process platform that makes a document spawns its workers, and each
        # imports the PDF and signature libraries (seconds of CPU): one is enough for a
        # test's few documents, and the suite's CPU goes to the tests.
        document_workers=1,
        log_json=False,
    )


@pytest.fixture
async def new_tenant(database_url: str) -> Callable[..., object]:
    """Makes a fresh tenant (unique INE code) so tests never see each other's rows."""
    engine = create_async_engine(asyncpg_url(database_url))

    async def make(*, activo: bool = True) -> str:
        code = f"{next(_tenant_codes) % 100000:05d}"
        async with engine.begin() as conn:
            await add_tenant(
                conn, Tenant(code, f"Ayuntamiento de prueba {code}", "L01000000", activo)
            )
        return code

    yield make
    await engine.dispose()


@pytest.fixture
def token(keys_dir: Path) -> Callable[..., str]:
    """Signs a development token for a tenant with roles."""

    def make(tenant: str, *roles: str, sub: str = "ana", nif: str | None = None) -> str:
        return issue_dev_token(keys_dir, tenant=tenant, sub=sub, roles=list(roles), nif=nif)

    return make


@pytest.fixture
async def inprocess_platform(settings: Settings) -> AsyncIterator[Platform]:
    """registro and tramitador wired on the in-process bus, relay and consumers running."""
    platform = await build_platform(
        settings, ["registro", "tramitador"], transport=InProcessTransport()
    )
    await platform.start()
    yield platform
    await platform.close()


@pytest.fixture
async def registro_platform(settings: Settings) -> AsyncIterator[Platform]:
    """The registro alone on the in-process bus, its runtime started."""
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def registro_client(registro_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An ASGI client of the registro_platform's app."""
    async with asgi_client(registro_platform.apps["registro"]) as client:
        yield client
