"""Database access: async engines, and transactions bound to one tenant.

Every tenant-owned table has a row-level-security policy comparing its
``tenant_id`` with the transaction-local setting ``app.tenant_id``. A
transaction opened with :func:`tenant_transaction` sets it, so a query that
forgets its tenant filter still sees only that tenant's rows.

Pooled connections are not pinged on checkout (``pool_pre_ping`` costs a round trip
on every transaction). Instead they are replaced after ``POOL_RECYCLE_SECONDS``, and a
connection found dead by the first statement of a transaction (the database restarted,
a proxy cut it) is thrown away, with the rest of the pool, and the transaction is opened
again on a fresh one: nothing had been done on it yet.

Binding a transaction to its tenant is the first thing every unit of work does (a bus
consumer runs a dozen a second), so it skips SQLAlchemy's statement machinery: the
tenant goes straight to the driver on the session's own connection, in its transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from services.common.lean import LeanPool, tenant_setting_sql
from services.common.overload import POOL_WAIT

__all__ = ["FIRST_STATUS", "TENANT_SETTING", "Database", "asyncpg_url", "tenant_transaction"]

TENANT_SETTING = "app.tenant_id"
# Where Database.begin_tenant leaves the command status of its ``first`` statement.
FIRST_STATUS = "consistorio.first_status"
# Connections older than this are replaced at checkout: before any server or middlebox
# idle cut-off we know of, and cheap (one connect every half hour per pooled connection).
POOL_RECYCLE_SECONDS = 1800

_log = logging.getLogger("consistorio.db")


def asyncpg_url(url: str) -> str:
    """Accepts ``postgresql://`` or ``postgres://`` URLs and selects the asyncpg driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


class _TimedPool(AsyncAdaptedQueuePool):
    """The usual async pool, recording how long each checkout waited (a metric)."""

    label = "requests"
    # SQLAlchemy names a pool's logger after its class; keep the library's (quiet) name.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def _do_get(self):
        started = time.perf_counter()
        try:
            return super()._do_get()
        finally:
            POOL_WAIT.labels(self.label).observe(time.perf_counter() - started)


class Database:
    """An engine and session factory for one process; dispose on shutdown."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        pool_timeout: float = 30.0,
        echo: bool = False,
        label: str = "requests",
    ) -> None:
        """``label`` names the pool in ``consistorio_db_pool_wait_seconds``."""
        # pool_timeout bounds how long a caller waits for a connection; past it
        # SQLAlchemy raises TimeoutError, which services answer as a 503.
        overflow = pool_size if max_overflow is None else max_overflow
        self.engine: AsyncEngine = create_async_engine(
            asyncpg_url(url),
            pool_size=pool_size,
            max_overflow=overflow,
            pool_timeout=pool_timeout,
            pool_recycle=POOL_RECYCLE_SECONDS,
            poolclass=type("TimedPool", (_TimedPool,), {"label": label}),
            echo=echo,
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Raw asyncpg beside the engine, for the few hot paths (see services.common.lean);
        # it opens no connection until one of them runs.
        self.lean = LeanPool(
            self.engine.url.render_as_string(hide_password=False),
            size=pool_size + overflow,
            timeout=pool_timeout,
            recycle_seconds=POOL_RECYCLE_SECONDS,
            setting=TENANT_SETTING,
            label=label,
        )

    async def begin_tenant(self, tenant_id: str, *, first: str = "") -> AsyncSession:
        """A session in an open transaction bound to ``tenant_id`` (the caller closes it).

        ``first`` is constant SQL run right after the tenant is set, in the same round trip
        when it can be; its command status (``INSERT 0 1``) is left in
        ``session.info[FIRST_STATUS]``.

        A pooled connection that turns out dead at this first statement is discarded
        (SQLAlchemy invalidates the pool with it) and the transaction begun again once.
        """
        for attempt in (1, 2):
            session = self.sessions()
            try:
                await session.begin()
                status = await self._bind(await session.connection(), tenant_id, first)
                if first:
                    session.info[FIRST_STATUS] = status
                return session
            except DBAPIError as exc:
                await session.close()
                if not exc.connection_invalidated or attempt == 2:
                    raise
                _log.warning("dead database connection discarded; transaction begun again")
            except BaseException:
                await session.close()
                raise
        raise AssertionError("unreachable")

    async def _bind(self, connection: AsyncConnection, tenant_id: str, first: str) -> str:
        """``BEGIN``, the tenant and ``first`` in one round trip, sent by the driver itself
        on the session's connection (see :class:`_Begun`); the status of the last command.
        Through ``session.execute`` each was a round trip with a compiled statement, a
        result and a greenlet switch.
        """
        raw = await connection.get_raw_connection()
        adapter: Any = raw.dbapi_connection
        driver: asyncpg.Connection = raw.driver_connection
        try:
            sql, args = tenant_setting_sql(TENANT_SETTING, tenant_id)
            if adapter._transaction is None:  # noqa: SLF001
                # Recorded before it is sent: if the round trip fails halfway, the
                # session's rollback still ends whatever it began.
                _Begun.record(adapter, driver)
                if not args:
                    return str(await driver.execute(";".join(filter(None, ("BEGIN", sql, first)))))
                await driver.execute("BEGIN")
            status = str(await driver.execute(sql, *args))
            return str(await driver.execute(first)) if first else status
        except Exception as exc:
            if not driver.is_closed():
                raise
            # As SQLAlchemy does on a disconnect: this connection and every one pooled
            # with it are replaced, and the caller begins again.
            self.engine.sync_engine.pool._invalidate(raw, exc, _checkin=False)  # noqa: SLF001
            await connection.invalidate(exc)
            raise DBAPIError(None, None, exc, connection_invalidated=True) from exc

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.lean.close()
        await self.engine.dispose()


class _Begun:
    """A transaction begun on the driver, as SQLAlchemy's asyncpg adapter keeps its own.

    The adapter begins a transaction lazily, at the first statement, in a round trip of
    its own; a unit of work's first statement is always its tenant, so both are sent at
    once instead and the adapter is told a transaction is open: the session's commit and
    rollback then end it as usual, and so does the pool's reset when a session closes.
    The adapter only ever awaits ``commit()`` or ``rollback()`` on what it keeps there
    (SQLAlchemy 2.0 also reads a ``_started`` flag, set here too).
    """

    __slots__ = ("_driver",)

    def __init__(self, driver: asyncpg.Connection) -> None:
        self._driver = driver

    @classmethod
    def record(cls, adapter: Any, driver: asyncpg.Connection) -> None:
        adapter._transaction = cls(driver)  # noqa: SLF001
        if hasattr(adapter, "_started"):
            adapter._started = True  # noqa: SLF001

    async def commit(self) -> None:
        await self._driver.execute("COMMIT")

    async def rollback(self) -> None:
        await self._driver.execute("ROLLBACK")


async def bind_tenant(session: AsyncSession, tenant_id: str) -> None:
    """Sets the transaction's tenant for row-level security (local to the transaction)."""
    await session.execute(
        text("SELECT set_config(:name, :tenant, true)"),
        {"name": TENANT_SETTING, "tenant": tenant_id},
    )


@asynccontextmanager
async def tenant_transaction(db: Database, tenant_id: str) -> AsyncIterator[AsyncSession]:
    """One transaction that sees only ``tenant_id``'s rows; commits on success."""
    session = await db.begin_tenant(tenant_id)
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()
