"""The unit of work: one tenant-bound transaction per use case.

Inside it a use case changes rows, records audit entries and emits events. On
commit the events go to the service's outbox in the *same* transaction (no dual
write), and the relay is woken right after the commit.

Writes a use case does not need to read back (new rows, audit records, outbox
events, stored idempotent answers) are deferred and sent at commit as one
statement of data-modifying CTEs. That matters for gapless numbering: the
counter row stays locked from the moment a number is taken until commit, so
every round trip saved there is throughput for the whole tenant.

How they are grouped under PostgreSQL's parameter limit, and the statements cached
for them, is ``services.common.deferred``.
"""

from __future__ import annotations

import abc
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Select,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal_column,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

from services.common.bus.envelope import EventName, build_envelope
from services.common.contracts import ContractRegistry
from services.common.db import FIRST_STATUS, Database
from services.common.deferred import MAX_PARAMETERS, Deferred, Row, groups, statement
from services.common.kernel_tables import KernelTables
from services.common.lean import LeanTransaction
from services.common.telemetry import current_traceparent

__all__ = [
    "MAX_PARAMETERS",
    "Actor",
    "LeanUnitOfWork",
    "NumberedAudit",
    "NumberedEvent",
    "Numbering",
    "UnitOfWork",
]

# Up to this many events of one use case, each gets its own single-row outbox INSERT.
_SINGLE_ROW_EVENTS = 16


@dataclass(frozen=True)
class Actor:
    """Who causes a state change and from where (for the audit trail)."""

    sub: str
    name: str | None = None
    client_ip: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, what: str) -> Actor:
        """An actor for changes made by the platform itself (e.g. a bus consumer)."""
        return cls(sub=f"sistema:{what}", name="Consistorio")


@dataclass(frozen=True)
class Numbering:
    """A gapless series and how its numbers are written: ``prefix`` then the sequence,
    zero-padded to ``width`` digits (more if it has more); past ``maximum``, none."""

    serie: str
    anio: int
    prefix: str
    width: int = 6
    maximum: int | None = None
    sequence_column: str = "secuencia"
    number_column: str = "numero"


@dataclass(frozen=True)
class NumberedAudit:
    """The audit entry of a numbered row (``new`` gets the real number at write)."""

    action: str
    entity: str
    entity_id: str
    new: dict[str, Any]


@dataclass(frozen=True)
class NumberedEvent:
    """The event of a numbered row (its data and subject get the real number at write)."""

    name: str
    data: dict[str, Any]


def _with_number(
    document: Any, path: tuple[str, ...], keys: tuple[str, str], seq: Any, num: Any
) -> Any:
    """``document`` (JSONB) with the sequence and number written at ``path`` + ``keys``."""
    for key, value in zip(keys, (seq, num), strict=True):
        where = "{" + ",".join((*path, key)) + "}"
        document = func.jsonb_set(document, literal_column(f"'{where}'"), func.to_jsonb(value))
    return document


@functools.lru_cache(maxsize=64)
def _numbered_statement(
    tables: KernelTables,
    table: Table,
    columns: tuple[str, ...],
    *,
    width: int,
    maximum: int | None,
    sequence_column: str,
    number_column: str,
) -> Select[Any]:
    """The statement of :meth:`UnitOfWork.add_numbered` for one table and set of columns.

    Built once with named parameters: building it for every call (a literal per value)
    cost more CPU than the rest of the write. Its compiled form is then cached too.
    """
    counters = tables.counters
    taken = (
        pg_insert(counters)
        .values(
            tenant_id=bindparam("tenant"),
            serie=bindparam("serie"),
            anio=bindparam("anio"),
            ultimo=1,
        )
        .on_conflict_do_update(
            index_elements=[counters.c.tenant_id, counters.c.serie, counters.c.anio],
            set_={"ultimo": counters.c.ultimo + 1},
        )
        .returning(counters.c.ultimo)
        .cte("tomado")
    )
    digits = cast(taken.c.ultimo, Text)
    formatted: Any = bindparam("prefix", type_=Text) + func.lpad(
        digits, func.greatest(width, func.length(digits)), "0"
    )
    if maximum is not None:
        # Past the series' range there is no number: the NOT NULL column refuses it.
        formatted = case((taken.c.ultimo <= maximum, formatted), else_=null())
    number = select(taken.c.ultimo.label("secuencia"), formatted.label("numero")).cte("numero")
    seq, num = number.c.secuencia, number.c.numero

    values = [bindparam(f"v_{name}", type_=table.c[name].type) for name in columns]
    written = (
        insert(table)
        .from_select([*columns, sequence_column, number_column], select(*values, seq, num))
        .cte("fila")
    )

    log = tables.audit_log
    marks = (sequence_column, number_column)
    snapshot = _with_number(bindparam("new", type_=JSONB), (), marks, seq, num)
    audited = (
        insert(log)
        .from_select(
            [
                "tenant_id",
                "actor",
                "action",
                "entity",
                "entity_id",
                "new_values",
                "client_ip",
                "request_id",
            ],
            select(
                bindparam("tenant", type_=log.c.tenant_id.type),
                bindparam("actor", type_=log.c.actor.type),
                bindparam("action", type_=log.c.action.type),
                bindparam("entity", type_=log.c.entity.type),
                bindparam("entity_id", type_=log.c.entity_id.type),
                snapshot,
                bindparam("client_ip", type_=log.c.client_ip.type),
                bindparam("request_id", type_=log.c.request_id.type),
            ).select_from(number),
        )
        .cte("auditado")
    )

    outbox = tables.outbox
    patched = _with_number(bindparam("envelope", type_=JSONB), ("data",), marks, seq, num)
    patched = func.jsonb_set(patched, literal_column("'{subject}'"), func.to_jsonb(num))
    published = (
        insert(outbox)
        .from_select(
            ["event_id", "tenant_id", "routing_key", "envelope"],
            select(
                bindparam("event_id", type_=outbox.c.event_id.type),
                bindparam("tenant", type_=outbox.c.tenant_id.type),
                bindparam("routing_key", type_=outbox.c.routing_key.type),
                patched,
            ).select_from(number),
        )
        .cte("publicado")
    )
    return select(seq, num).add_cte(taken, number, written, audited, published)


def _envelope(
    contracts: ContractRegistry,
    tenant_id: str,
    name: str,
    data: dict[str, Any],
    subject: str | None,
) -> dict[str, Any]:
    """An event's CloudEvents envelope, its data checked against its contract now."""
    contracts.validate(name, data)
    return build_envelope(
        EventName.parse(name),
        tenant=tenant_id,
        data=data,
        dataschema=contracts.schema_uri(name),
        subject=subject,
        traceparent=current_traceparent(),
    )


def _numbered_write(
    contracts: ContractRegistry,
    tables: KernelTables,
    tenant_id: str,
    actor: Actor,
    table: Table,
    row: dict[str, Any],
    *,
    numbering: Numbering,
    audit: NumberedAudit,
    event: NumberedEvent,
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement of ``add_numbered`` and its parameters (see UnitOfWork.add_numbered)."""
    envelope = _envelope(contracts, tenant_id, event.name, event.data, numbering.prefix)
    statement = _numbered_statement(
        tables,
        table,
        tuple(row),
        width=numbering.width,
        maximum=numbering.maximum,
        sequence_column=numbering.sequence_column,
        number_column=numbering.number_column,
    )
    params = {f"v_{name}": value for name, value in row.items()}
    params.update(
        tenant=tenant_id,
        serie=numbering.serie,
        anio=numbering.anio,
        prefix=numbering.prefix,
        actor=actor.sub,
        action=audit.action,
        entity=audit.entity,
        entity_id=audit.entity_id,
        new=audit.new,
        client_ip=actor.client_ip,
        request_id=actor.request_id,
        event_id=envelope["id"],
        routing_key=EventName.from_type(envelope["type"]).routing_key(tenant_id),
        envelope=envelope,
    )
    return statement, params


class _TenantWork(abc.ABC):
    """What both units of work share: the tenant, the actor, the kernel's tables, the
    numbered write (see :meth:`add_numbered`), and ``first``: constant SQL run right
    after the tenant is bound, in the same round trip as ``BEGIN``."""

    def __init__(
        self,
        *,
        db: Database,
        tables: KernelTables,
        contracts: ContractRegistry,
        tenant_id: str,
        actor: Actor,
        first: str = "",
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self.tables = tables
        self._contracts = contracts
        self.tenant_id = tenant_id
        self.actor = actor
        self.first = first
        self._after_commit = after_commit
        self._wrote_events = False

    @abc.abstractmethod
    async def fetch_first(self, statement: Select[Any] | UpdateBase, params: dict[str, Any]) -> Any:
        """The first row of a read, or of a write's RETURNING (None if none), the same
        call on either unit of work: a use case written against it runs on both."""

    async def add_numbered(
        self,
        table: Table,
        row: dict[str, Any],
        *,
        numbering: Numbering,
        audit: NumberedAudit,
        event: NumberedEvent,
    ) -> tuple[int, str]:
        """Takes the next number of a series and writes, in that same statement, the row
        numbered with it, its audit entry and its event; returns (sequence, number).

        One round trip instead of four (take the number, then the deferred writes), and
        the counter row, locked from that statement until commit, waits only for the
        commit. Gapless as :meth:`next_number`: same counter, same transaction.

        ``row`` lacks the sequence and number columns (``numbering`` names them). The
        audit snapshot and the event data are built by the caller with any valid number
        (the contract is checked on them now); the statement writes the real one into
        their top-level ``numbering`` keys, and into the event's subject.
        """
        statement, params = _numbered_write(
            self._contracts,
            self.tables,
            self.tenant_id,
            self.actor,
            table,
            row,
            numbering=numbering,
            audit=audit,
            event=event,
        )
        result = await self.fetch_first(statement, params)
        self._wrote_events = True
        return int(result[0]), str(result[1])


class UnitOfWork(_TenantWork):
    """An open transaction for one tenant with audit and outbox attached.

    The command status of ``first`` (see ``Database.begin_tenant``) is then
    :attr:`first_status`.
    """

    _events: list[dict[str, Any]]
    _deferred: list[Deferred]
    _session: AsyncSession | None = None
    first_status: str = ""

    @property
    def session(self) -> AsyncSession:
        assert self._session is not None, "the unit of work is not open"
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._events, self._deferred = [], []
        self._session = await self._db.begin_tenant(self.tenant_id, first=self.first)
        if self.first:
            self.first_status = self._session.info[FIRST_STATUS]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if exc_type is not None:
                await session.rollback()
                return
            self._defer_outbox()
            await self._flush()
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()
            self._session = None
        if (self._events or self._wrote_events) and self._after_commit is not None:
            self._after_commit()

    def emit(self, name: str, data: dict[str, Any], *, subject: str | None = None) -> None:
        """Records an event for the outbox; the payload is checked against its contract now."""
        self._events.append(self._envelope(name, data, subject))

    def _envelope(self, name: str, data: dict[str, Any], subject: str | None) -> dict[str, Any]:
        return _envelope(self._contracts, self.tenant_id, name, data, subject)

    def add(self, table: Table, row: dict[str, Any]) -> None:
        """Inserts ``row`` into ``table`` at commit (deferred, see the module docstring)."""
        # A copy: the row is written as it is now, as a statement built now would.
        self._deferred.append(Row(table, dict(row)))

    def defer(self, statement: UpdateBase) -> None:
        """Runs an INSERT/UPDATE at commit, in the same single statement as the other writes."""
        self._deferred.append(statement)

    def audit(
        self,
        *,
        action: str,
        entity: str,
        entity_id: str,
        old: dict[str, Any] | None = None,
        new: dict[str, Any] | None = None,
    ) -> None:
        """Records an audit entry (who, tenant, what, when, old and new values) for commit."""
        self._deferred.append(
            Row(
                self.tables.audit_log,
                {
                    "tenant_id": self.tenant_id,
                    "actor": self.actor.sub,
                    "action": action,
                    "entity": entity,
                    "entity_id": entity_id,
                    "old_values": old,
                    "new_values": new,
                    "client_ip": self.actor.client_ip,
                    "request_id": self.actor.request_id,
                },
            )
        )

    async def next_number(self, serie: str, anio: int) -> int:
        """Takes the next number of a gapless series (per tenant, serie and year).

        The counter row stays locked until commit, so concurrent takers queue
        behind it, and a rollback gives the number back: no gaps, no duplicates.
        """
        counters = self.tables.counters
        stmt = (
            pg_insert(counters)
            .values(tenant_id=self.tenant_id, serie=serie, anio=anio, ultimo=1)
            .on_conflict_do_update(
                index_elements=[counters.c.tenant_id, counters.c.serie, counters.c.anio],
                set_={"ultimo": counters.c.ultimo + 1},
            )
            .returning(counters.c.ultimo)
        )
        result = await self.session.execute(stmt)
        return int(result.scalar_one())

    async def fetch_first(self, statement: Select[Any] | UpdateBase, params: dict[str, Any]) -> Any:
        return (await self.session.execute(statement, params)).first()

    def _defer_outbox(self) -> None:
        if not self._events:
            return
        rows = [
            {
                "event_id": env["id"],
                "tenant_id": env["tenantid"],
                "routing_key": EventName.from_type(env["type"]).routing_key(env["tenantid"]),
                "envelope": env,
            }
            for env in self._events
        ]
        outbox = self.tables.outbox
        if len(rows) <= _SINGLE_ROW_EVENTS:
            # SQLAlchemy never caches the compiled form of a multi-row VALUES, and the
            # outbox rides in the same statement as every other write of the use case:
            # one row per event keeps the whole statement cacheable.
            self._deferred.extend(Row(outbox, row) for row in rows)
        else:
            self._deferred.append(insert(outbox).values(rows))

    async def _flush(self) -> None:
        """Sends every deferred write in as few round trips as the parameter limit allows
        (one for any ordinary use case; PostgreSQL runs each CTE once)."""
        deferred, self._deferred = self._deferred, []
        for group in groups(deferred):
            stmt, params = statement(group)
            await self.session.execute(stmt, params)


class LeanUnitOfWork(_TenantWork):
    """A unit of work on raw asyncpg (``services.common.lean``) for the hot paths: reads
    compiled once, and :meth:`add_numbered`, the same write as UnitOfWork's. Nothing is
    deferred: a use case that needs more (audit of its own, deferred writes, the ORM)
    uses :class:`UnitOfWork`.

    ``first`` is typically a lock the use case takes before anything else.
    """

    _transaction: LeanTransaction | None = None

    async def __aenter__(self) -> LeanUnitOfWork:
        self._stack = contextlib.AsyncExitStack()
        self._transaction = await self._stack.enter_async_context(
            self._db.lean.transaction(self.tenant_id, first=self.first)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._transaction = None
        await self._stack.__aexit__(exc_type, exc, tb)
        if exc_type is None and self._wrote_events and self._after_commit is not None:
            self._after_commit()

    @property
    def transaction(self) -> LeanTransaction:
        assert self._transaction is not None, "the unit of work is not open"
        return self._transaction

    async def fetch_first(self, statement: Select[Any] | UpdateBase, params: dict[str, Any]) -> Any:
        return await self.transaction.fetchrow(statement, params)
