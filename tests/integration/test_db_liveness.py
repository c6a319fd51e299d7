"""Pooled connections are not pinged before each transaction; one the server killed
meanwhile is found at the transaction's first statement, replaced, and the
transaction goes ahead (real PostgreSQL, real backend termination)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import Database, asyncpg_url, tenant_transaction
from services.common.settings import Settings
from tests.support.servers import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.app_database_url(), pool_size=1, max_overflow=0)
    yield database
    await database.dispose()


async def _terminate(pid: int) -> None:
    admin = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    finally:
        await admin.dispose()


async def test_a_connection_killed_in_the_pool_is_replaced_without_an_error(
    db: Database, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    async with tenant_transaction(db, tenant) as session:
        killed = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
    await _terminate(killed)

    async with tenant_transaction(db, tenant) as session:
        pid = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
        seen = await session.scalar(text("SELECT current_setting('app.tenant_id')"))

    assert pid != killed
    assert seen == tenant
