"""The hot paths' raw asyncpg transactions (services.common.lean) keep what the
SQLAlchemy ones promise: the tenant's row-level security, all or nothing, a dead pooled
connection replaced, a bounded wait for a connection. Real PostgreSQL, as the services'
role."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.common.db import Database, tenant_transaction
from services.common.lean import lean_statement
from services.common.settings import Settings
from services.registro.metadata import kernel
from tests.integration.test_db_liveness import _terminate
from tests.integration.test_row_level_security import _insert_asiento

pytestmark = pytest.mark.integration

_COUNT = "SELECT count(*) FROM registro.asientos"


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.app_database_url(), pool_size=1, max_overflow=0)
    yield database
    await database.dispose()


async def test_a_lean_transaction_sees_and_writes_only_its_tenants_rows(
    db: Database, new_tenant: Callable[..., Any]
) -> None:
    a, b = await new_tenant(), await new_tenant()
    await _insert_asiento(db, a, 1)
    await _insert_asiento(db, b, 1)
    await _insert_asiento(db, b, 2)

    async with db.lean.transaction(a) as tx:
        # No tenant filter: the policy does it.
        seen = await tx.connection.fetchval(_COUNT)
        setting = await tx.connection.fetchval("SELECT current_setting('app.tenant_id')")
        await tx.connection.execute("SAVEPOINT intento")  # the outer one goes on
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await tx.connection.execute(
                "INSERT INTO registro.audit_log (tenant_id, actor, action, entity, "
                "entity_id) VALUES ($1, 'x', 'y', 'z', '1')",
                b,
            )
        await tx.connection.execute("ROLLBACK TO SAVEPOINT intento")

    assert (seen, setting) == (1, a)


async def test_what_a_failed_lean_transaction_wrote_is_rolled_back(
    db: Database, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    with pytest.raises(RuntimeError, match="after the write"):
        async with db.lean.transaction(tenant) as tx:
            await tx.connection.execute(
                "INSERT INTO registro.audit_log (tenant_id, actor, action, entity, entity_id)"
                " VALUES ($1, 'x', 'y', 'z', '1')",
                tenant,
            )
            raise RuntimeError("after the write")

    async with db.lean.transaction(tenant) as tx:
        left = await tx.connection.fetchval("SELECT count(*) FROM registro.audit_log")
        open_after = tx.connection.is_in_transaction()
    assert left == 0
    assert open_after  # the block runs inside its transaction


async def test_the_first_statement_runs_after_the_tenant_is_set_in_the_same_transaction(
    db: Database, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    first = "SELECT pg_advisory_xact_lock_shared(7, hashtext(current_setting('app.tenant_id')))"
    async with db.lean.transaction(tenant, first=first) as tx:
        held = await tx.connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
            "pid = pg_backend_pid() AND mode = 'ShareLock' AND classid = 7 AND "
            "objid = hashtext($1)::oid",
            tenant,
        )
    async with db.lean.transaction(tenant) as tx:
        after = await tx.connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
    assert held == 1
    assert after == 0  # a transaction's lock, gone with it


async def test_a_tenant_id_that_is_no_plain_code_is_bound_not_written_into_the_sql(
    db: Database,
) -> None:
    odd = "x'); DROP TABLE registro.asientos; --"
    async with db.lean.transaction(odd) as tx:
        setting = await tx.connection.fetchval("SELECT current_setting('app.tenant_id')")
        rows = await tx.connection.fetchval(_COUNT)
    assert setting == odd
    assert rows == 0


async def test_a_connection_killed_in_the_lean_pool_is_replaced_without_an_error(
    db: Database, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    async with db.lean.transaction(tenant) as tx:
        killed = await tx.connection.fetchval("SELECT pg_backend_pid()")
    await _terminate(killed)

    async with db.lean.transaction(tenant) as tx:
        pid = await tx.connection.fetchval("SELECT pg_backend_pid()")
        seen = await tx.connection.fetchval("SELECT current_setting('app.tenant_id')")

    assert pid != killed
    assert seen == tenant


async def test_waiting_too_long_for_a_lean_connection_is_the_pool_timeout(
    settings: Settings, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    db = Database(settings.app_database_url(), pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        async with db.lean.transaction(tenant):
            with pytest.raises(PoolTimeout):
                async with db.lean.transaction(tenant):
                    pass
    finally:
        await db.dispose()


async def test_a_statement_compiled_once_runs_with_its_literals_and_json_encoded(
    db: Database, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    audit = kernel.audit_log
    statement = select(
        func.jsonb_build_object("dato", bindparam("dato", type_=audit.c.new_values.type)),
        func.length(bindparam("texto", type_=audit.c.actor.type)) + 40,
    )
    lean = lean_statement(statement)

    async with db.lean.transaction(tenant) as tx:
        row = await tx.fetchrow(statement, {"dato": {"ñ": [1, None]}, "texto": "abc"})
    async with tenant_transaction(db, tenant) as session:
        orm = (await session.execute(statement, {"dato": {"ñ": [1, None]}, "texto": "abc"})).one()

    assert lean_statement(statement) is lean  # compiled once
    assert tuple(row) == tuple(orm) == ({"dato": {"ñ": [1, None]}}, 43)


async def test_lean_transactions_of_one_pool_run_side_by_side(
    settings: Settings, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    db = Database(settings.app_database_url(), pool_size=4)
    try:

        async def pid() -> int:
            async with db.lean.transaction(tenant) as tx:
                return int(
                    await tx.connection.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.2)")
                )

        pids = await asyncio.gather(*(pid() for _ in range(4)))
    finally:
        await db.dispose()
    assert len(set(pids)) == 4
