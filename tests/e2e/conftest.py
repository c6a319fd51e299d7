"""Fixtures of the end-to-end tests: platforms started as ``consistorio up`` does."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import asyncpg_url
from tests.support.broker import delete_run
from tests.support.process import RunningPlatform, postgres_on
from tests.support.servers import AMQP_URL, POSTGRES_ADMIN_URL, require_server


@pytest.fixture
def platform_factory() -> Iterator[list[RunningPlatform]]:
    """Collects started platforms and makes sure none outlives its test."""
    started: list[RunningPlatform] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=30)


@pytest.fixture
async def real_servers_env():
    """A fresh database on the real PostgreSQL and a private exchange on RabbitMQ."""
    admin = make_url(POSTGRES_ADMIN_URL)
    require_server("PostgreSQL", admin.host or "127.0.0.1", admin.port or 5432)
    require_server("RabbitMQ", "127.0.0.1", 5672)
    name = f"consistorio_e2e_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    run = uuid.uuid4().hex[:8]
    yield {
        "DATABASE_URL": admin.set(database=name).render_as_string(hide_password=False),
        "AMQP_URL": AMQP_URL,
        "BUS_EXCHANGE": f"consistorio.e2e.{run}",
        "BUS_QUEUE_PREFIX": f"e2e.{run}.",
    }
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()
    await delete_run(AMQP_URL, queue_prefix=f"e2e.{run}.", exchange=f"consistorio.e2e.{run}")


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    """A data dir the embedded PostgreSQL (its own system user when root) can reach;
    whatever server is left on it at the end is stopped."""
    path = Path(tempfile.mkdtemp(prefix="consistorio-kill-"))
    path.chmod(0o755)
    yield path / "var"
    for process in postgres_on(path / "var" / "postgres"):
        process.kill()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """An empty database on the real PostgreSQL (the commands create everything)."""
    admin = make_url(POSTGRES_ADMIN_URL)
    require_server("PostgreSQL", admin.host or "127.0.0.1", admin.port or 5432)
    name = f"consistorio_cli_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin.set(database=name).render_as_string(hide_password=False)
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()
