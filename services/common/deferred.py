"""The unit of work's deferred writes, and the statements that send them at commit.

A deferred write is either a row for a table (``UnitOfWork.add``, ``audit``, the outbox)
or any INSERT/UPDATE a use case built itself (``UnitOfWork.defer``). Rows are kept as
they are: the statement that sends a run of them is built once per *shape* (the tables
and column sets, in order) with bind parameters, and then comes from a cache. Building
``insert(table).values(**row)`` for every row, and SQLAlchemy's cache key for every
statement so built, cost a consumer's delivery more CPU than the database spent on it.

PostgreSQL's protocol carries at most 32,767 parameters a statement, so a large batch
(thousands of events, audit entries or rows) is cut into as few statements as fit: the
deferred writes are grouped in order, and a plain multi-row INSERT larger than the
limit by itself is split by rows. A use case of a few writes still sends one statement.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, Table, bindparam, insert, literal, select
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import CTE

__all__ = ["MAX_PARAMETERS", "Deferred", "Row", "groups", "statement"]

# The protocol's 16-bit parameter count is 32,767 for asyncpg; a margin is kept for
# the parameters an estimate does not see (ON CONFLICT clauses, expressions).
MAX_PARAMETERS = 32_000
_MARGIN_PER_STATEMENT = 32
# Runs of rows up to this long get a cached statement; a longer run (a batch) is rare,
# and caching its shape would keep a huge statement for one use.
_SHAPED_ROWS = 32


@dataclass(frozen=True, slots=True)
class Row:
    """One row to insert into ``table`` at commit (keys are the table's column keys)."""

    table: Table
    values: Mapping[str, Any]

    def shape(self) -> tuple[Table, tuple[str, ...]]:
        return self.table, tuple(self.values)

    def as_statement(self) -> Insert:
        return insert(self.table).values(**self.values)


Deferred = Row | UpdateBase


def _bindable(row: Row) -> bool:
    """Whether every value is plain data: a SQL expression (``func.now()``) cannot be a
    parameter, and keeps the statement built for it."""
    return not any(
        isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")
        for value in row.values.values()
    )


def _parameters(item: Deferred) -> int:
    """An upper estimate of the bound parameters ``item`` sends, without compiling it."""
    if isinstance(item, Row):
        return len(item.values) + _MARGIN_PER_STATEMENT
    multi = getattr(item, "_multi_values", ())
    if multi:
        return sum(len(row) for rows in multi for row in rows) + _MARGIN_PER_STATEMENT
    values = getattr(item, "_values", None) or {}
    # An UPDATE's WHERE (an INSERT's ON CONFLICT) holds a few parameters of its own,
    # which the margin stands for: counting them exactly would need a compile.
    return len(values) + _MARGIN_PER_STATEMENT


def _split(item: Deferred) -> list[Deferred]:
    """A plain multi-row INSERT cut into INSERTs that each fit under the limit."""
    stmt = item.as_statement() if isinstance(item, Row) else item
    multi: Any = getattr(stmt, "_multi_values", ())
    plain = (
        isinstance(stmt, Insert)
        and len(multi) == 1
        and stmt._post_values_clause is None
        and not stmt._returning
        and stmt.select is None
    )
    if not plain:
        raise ValueError(
            f"a deferred statement of ~{_parameters(stmt)} parameters exceeds PostgreSQL's "
            "limit and is not a plain multi-row INSERT that could be split"
        )
    rows = multi[0]
    width = max(len(row) for row in rows)
    per_statement = max(1, (MAX_PARAMETERS - _MARGIN_PER_STATEMENT) // width)
    table = stmt.table
    return [
        insert(table).values(rows[i : i + per_statement])
        for i in range(0, len(rows), per_statement)
    ]


def groups(items: Sequence[Deferred]) -> list[list[Deferred]]:
    """The writes in order, in runs whose parameters fit in one statement."""
    out: list[list[Deferred]] = []
    current: list[Deferred] = []
    size = 0
    for item in items:
        count = _parameters(item)
        parts = _split(item) if count > MAX_PARAMETERS else [item]
        for part in parts:
            count = _parameters(part) if len(parts) > 1 else count
            if current and size + count > MAX_PARAMETERS:
                out.append(current)
                current, size = [], 0
            current.append(part)
            size += count
    if current:
        out.append(current)
    return out


def _name(position: int, column: int) -> str:
    # By position, not by column name: two rows of one table in a statement must not
    # share a parameter, and positions keep the names plain.
    return f"p{position}_{column}"


@functools.lru_cache(maxsize=256)
def _shaped(shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> Executable:
    """The statement of a run of rows of ``shape``, with a named parameter per value.

    SQLAlchemy memoises a statement's cache key on the statement object, so the one
    built here is neither rebuilt nor re-keyed on later commits.
    """
    inserts = [
        insert(table).values(
            {
                key: bindparam(_name(position, column), type_=table.c[key].type)
                for column, key in enumerate(keys)
            }
        )
        for position, (table, keys) in enumerate(shape)
    ]
    if len(inserts) == 1:
        return inserts[0]
    return select(literal(1)).add_cte(*(stmt.cte(f"w{i}") for i, stmt in enumerate(inserts)))


@functools.lru_cache(maxsize=512)
def _row_cte(table: Table, keys: tuple[str, ...], position: int) -> CTE:
    """The INSERT of one row at ``position`` of a statement that mixes rows with statements
    built by the use case: the rows keep their cached part, named by position."""
    values = {
        key: bindparam(_name(position, column), type_=table.c[key].type)
        for column, key in enumerate(keys)
    }
    return insert(table).values(values).cte(f"w{position}")


def _row_params(position: int, row: Row) -> dict[str, Any]:
    return {_name(position, column): value for column, value in enumerate(row.values.values())}


def statement(group: Sequence[Deferred]) -> tuple[Executable, dict[str, Any] | None]:
    """One statement sending ``group`` (and its parameters, when they are apart from it).

    A run of plain rows gets its shape's cached statement. Otherwise each write is a
    data-modifying CTE of one statement (PostgreSQL runs each once): plain rows still
    come cached, a statement given to ``defer`` (or a row holding an expression) is the
    statement built for it.
    """
    shaped = len(group) <= _SHAPED_ROWS
    rows = [item for item in group if isinstance(item, Row) and shaped and _bindable(item)]
    if len(rows) == len(group):
        params: dict[str, Any] = {}
        for position, row in enumerate(rows):
            params.update(_row_params(position, row))
        return _shaped(tuple(row.shape() for row in rows)), params
    if len(group) == 1:
        item = group[0]
        return (item.as_statement() if isinstance(item, Row) else item), None
    params = {}
    ctes: list[CTE] = []
    for position, item in enumerate(group):
        if isinstance(item, Row) and shaped and _bindable(item):
            ctes.append(_row_cte(item.table, tuple(item.values), position))
            params.update(_row_params(position, item))
        else:
            built = item.as_statement() if isinstance(item, Row) else item
            ctes.append(built.cte(f"w{position}"))
    return select(literal(1)).add_cte(*ctes), params or None
