"""Raw asyncpg for the hot paths where SQLAlchemy's cost per statement is the bill.

Registering an asiento is four small statements; through SQLAlchemy's session each one
costs more CPU in Python (cache keys, parameter processing, result wrapping, greenlet
switches) than PostgreSQL spends running it. The few use cases a council's peak hits
(see ``services.registro.asientos.service``) run here instead:

- statements are still written with SQLAlchemy, then compiled **once** for asyncpg
  (:class:`LeanStatement`); asyncpg prepares each once per connection;
- a transaction's ``BEGIN``, its tenant (row-level security, as in ``db.Database``) and
  an optional first statement of constant SQL travel in one round trip;
- the pool is asyncpg's own, beside the SQLAlchemy one, with the same URL and limits.

Everything else keeps using SQLAlchemy: this is for statements run thousands of times
an hour, not for every query.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from services.common.overload import POOL_WAIT

__all__ = [
    "LeanPool",
    "LeanStatement",
    "LeanTransaction",
    "asyncpg_dsn",
    "lean_statement",
    "tenant_setting_sql",
]

_log = logging.getLogger("consistorio.db")

_DIALECT = asyncpg_dialect()
# The errors of a pooled connection that died while idle (server restart, proxy cut).
_DEAD = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    ConnectionError,
    OSError,
)


@dataclass(frozen=True)
class LeanStatement:
    """A SQLAlchemy statement compiled once for asyncpg: its SQL and how to order, and
    encode, a dict of parameters into asyncpg's positional arguments."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    encoders: Mapping[str, Callable[[Any], Any]]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (literal values of the statement are
        its own; JSON values are serialised as SQLAlchemy would)."""
        out = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            encode = self.encoders.get(name)
            out.append(value if encode is None or value is None else encode(value))
        return out


@functools.lru_cache(maxsize=128)
def lean_statement(statement: ClauseElement) -> LeanStatement:
    """``statement`` compiled for asyncpg, once per statement object (build the statement
    once too, with ``bindparam``s: a statement built per call is compiled per call)."""
    compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT))
    processors = compiled._bind_processors  # noqa: SLF001 - SQLAlchemy's own encoders
    names = tuple(compiled.positiontup or ())
    defaults = {name: compiled.binds[name].effective_value for name in names}
    return LeanStatement(
        sql=compiled.string,
        names=names,
        defaults=defaults,
        # Sequences of processors are for expanding IN parameters, which these lack.
        encoders={
            name: cast(Callable[[Any], Any], processors[name])
            for name in names
            if name in processors
        },
    )


def asyncpg_dsn(url: str) -> tuple[str, str | None]:
    """asyncpg's DSN for a SQLAlchemy URL, and its TLS mode apart.

    SQLAlchemy's asyncpg dialect takes ``?ssl=`` (or ``?sslmode=``) from the URL and hands
    it to asyncpg as an argument; left in a DSN, asyncpg would send it to the server as a
    setting and fail to connect. The same URL must open both pools.
    """
    parsed = make_url(url)
    query = dict(parsed.query)
    ssl = query.pop("ssl", None) or query.pop("sslmode", None)
    plain = parsed.set(drivername="postgresql", query=query)
    return plain.render_as_string(hide_password=False), str(ssl) if ssl else None


async def _setup(connection: asyncpg.Connection) -> None:
    """JSON travels as text both ways, encoded by the statement (see LeanStatement), as
    SQLAlchemy's asyncpg dialect sets it up."""
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=str, decoder=json.loads, schema="pg_catalog", format="text"
        )


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """What a hot path sets is local to its transaction (the tenant, its locks), and the
    transaction is over when the connection comes back: asyncpg's default reset (RESET
    ALL, UNLISTEN, CLOSE, unlock) would be one more round trip for nothing."""


def _literal(value: str) -> str | None:
    """``value`` as a SQL string literal when it is plainly safe to write one (the tenant
    ids are INE codes); None otherwise, and the caller binds it as a parameter."""
    return f"'{value}'" if value.isascii() and value.isalnum() else None


def tenant_setting_sql(setting: str, tenant_id: str) -> tuple[str, tuple[str, ...]]:
    """The SQL setting ``setting`` to ``tenant_id`` for the transaction, and its arguments:
    constant SQL (the simple protocol, no statement to prepare) when the id is plainly
    safe to write, bound parameters otherwise."""
    literal = _literal(tenant_id)
    if literal is None:
        return "SELECT set_config($1, $2, true)", (setting, tenant_id)
    return f"SELECT set_config('{setting}', {literal}, true)", ()


class LeanTransaction:
    """One open transaction on one connection, bound to a tenant."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetchrow(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
        """The first row of ``statement`` (compiled once, prepared once per connection)."""
        lean = lean_statement(statement)
        return await self.connection.fetchrow(lean.sql, *lean.arguments(params))

    async def execute(self, statement: ClauseElement, params: Mapping[str, Any]) -> None:
        """Runs ``statement`` (a write whose rows are not read back)."""
        lean = lean_statement(statement)
        await self.connection.execute(lean.sql, *lean.arguments(params))

    async def execute_constant(self, sql: str) -> None:
        """Runs constant SQL, no parameters (a lock a use case takes at a given point)."""
        await self.connection.execute(sql)


class LeanPool:
    """An asyncpg pool for the hot paths, opened on first use and closed with the
    ``Database`` it sits beside."""

    def __init__(
        self,
        url: str,
        *,
        size: int,
        timeout: float,
        recycle_seconds: float,
        setting: str,
        label: str,
    ) -> None:
        self._dsn, self._ssl = asyncpg_dsn(url)
        self._size = size
        self._timeout = timeout
        self._recycle = recycle_seconds
        self._setting = setting
        self._label = label
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        ssl=self._ssl,
                        min_size=0,
                        max_size=self._size,
                        max_inactive_connection_lifetime=self._recycle,
                        init=_setup,
                        reset=_nothing_to_reset,
                    )
        return self._pool

    async def close(self) -> None:
        """Closes the pool (its connections as their holders release them)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def transaction(
        self, tenant_id: str, *, first: str = ""
    ) -> AsyncIterator[LeanTransaction]:
        """A transaction bound to ``tenant_id``: committed when the block ends, rolled back
        when it raises.

        ``first`` is constant SQL run right after the tenant is set (it may read it with
        ``current_setting``), in the same round trip as ``BEGIN``: a lock the use case
        takes before anything else costs no round trip of its own. A pooled connection
        found dead at that first round trip is thrown away and the transaction begun
        again on a fresh one: nothing had been done on it yet.
        """
        pool = await self._get_pool()
        for attempt in (1, 2):
            connection = await self._acquire(pool)
            try:
                await self._begin(connection, tenant_id, first)
            except _DEAD:
                await pool.release(connection)
                if attempt == 2:
                    raise
                _log.warning("dead database connection discarded; transaction begun again")
                pool.expire_connections()
                continue
            except BaseException:
                await self._abandon(pool, connection)
                raise
            break
        try:
            yield LeanTransaction(connection)
        except BaseException:
            await self._abandon(pool, connection)
            raise
        try:
            await connection.execute("COMMIT")
        finally:
            await pool.release(connection)

    @staticmethod
    async def _abandon(pool: asyncpg.Pool, connection: asyncpg.Connection) -> None:
        """Rolls back what the connection has open and gives it back (a dead one is
        closed by the pool)."""
        try:
            if not connection.is_closed() and connection.is_in_transaction():
                with contextlib.suppress(*_DEAD):
                    await connection.execute("ROLLBACK")
        finally:
            await pool.release(connection)

    async def _acquire(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        started = time.perf_counter()
        try:
            return await pool.acquire(timeout=self._timeout)
        except TimeoutError:
            # The same error as the SQLAlchemy pool's: the services answer it as a 503.
            raise PoolTimeout(f"no database connection free within {self._timeout:g} s") from None
        finally:
            POOL_WAIT.labels(self._label).observe(time.perf_counter() - started)

    async def _begin(self, connection: asyncpg.Connection, tenant_id: str, first: str) -> None:
        literal = _literal(tenant_id)
        if literal is None:
            await connection.execute("BEGIN")
            await connection.execute("SELECT set_config($1, $2, true)", self._setting, tenant_id)
            if first:
                await connection.execute(first)
            return
        # One simple-protocol round trip: BEGIN, the tenant and the first statement.
        prelude = f"BEGIN; SELECT set_config('{self._setting}', {literal}, true)"
        await connection.execute(f"{prelude}; {first}" if first else prelude)
