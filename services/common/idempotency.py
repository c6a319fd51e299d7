"""Idempotent creating POSTs: a retry with the same ``Idempotency-Key`` replays the
first answer and changes nothing.

The key is claimed in the use case's own transaction with an insert that waits
on a concurrent holder of the same key, so two simultaneous retries cannot both
create: the second sees the first's stored answer once it commits.

It runs on either unit of work: the ORM's, where the stored answer rides in the
commit's deferred statement, and a hot path's on raw asyncpg (``LeanUnitOfWork``),
where it is one more statement. The statements are built once, with parameters.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.dml import ReturningInsert, Update

from services.common.errors import FieldError, Unprocessable
from services.common.kernel_tables import KernelTables
from services.common.uow import LeanUnitOfWork, UnitOfWork

__all__ = ["Created", "request_fingerprint", "run_idempotent"]

_MAX_KEY = 255


@dataclass(frozen=True)
class Created:
    """What a creating use case answers: status, JSON body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str]


def request_fingerprint(payload: Any) -> str:
    """A stable hash of the request body, to refuse a key reused for another request."""
    canonical = json.dumps(jsonable_encoder(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class _Statements:
    """The three statements of an idempotent POST for one service's tables."""

    claim: ReturningInsert[Any]
    stored: Select[Any]
    answer: Update


@functools.cache
def _statements(tables: KernelTables) -> _Statements:
    table = tables.idempotency_keys
    same_key = (table.c.tenant_id == bindparam("tenant"), table.c.key == bindparam("key"))
    return _Statements(
        claim=pg_insert(table)
        .values(
            tenant_id=bindparam("tenant"),
            key=bindparam("key"),
            operation=bindparam("operation"),
            request_hash=bindparam("request_hash"),
        )
        .on_conflict_do_nothing()
        .returning(table.c.key),
        stored=select(
            table.c.operation,
            table.c.request_hash,
            table.c.status_code,
            table.c.response_body,
            table.c.response_headers,
        ).where(*same_key),
        answer=update(table)
        .where(*same_key)
        .values(
            status_code=bindparam("status_code", type_=table.c.status_code.type),
            response_body=bindparam("response_body", type_=table.c.response_body.type),
            response_headers=bindparam("response_headers", type_=table.c.response_headers.type),
        ),
    )


async def run_idempotent(
    uow: UnitOfWork | LeanUnitOfWork,
    *,
    key: str | None,
    operation: str,
    payload: Any,
    create: Callable[[], Awaitable[Created]],
) -> JSONResponse:
    """Runs ``create`` once per key within ``uow``; replays the stored answer afterwards."""
    if key is None:
        created = await create()
        return _response(created, replayed=False)
    if not key or len(key) > _MAX_KEY:
        raise Unprocessable(
            "Idempotency-Key debe tener entre 1 y 255 caracteres.",
            errors=[FieldError("Idempotency-Key", "longitud no válida")],
        )
    statements = _statements(uow.tables)
    fingerprint = request_fingerprint(payload)
    params: dict[str, Any] = {"tenant": uow.tenant_id, "key": key}
    claimed = await uow.fetch_first(
        statements.claim, {**params, "operation": operation, "request_hash": fingerprint}
    )
    if claimed is None:
        row = await uow.fetch_first(statements.stored, params)
        stored_operation, stored_hash, status, body, headers = row
        if stored_operation != operation or stored_hash != fingerprint:
            raise Unprocessable(
                "Idempotency-Key ya usada con otra petición; use una clave nueva.",
                errors=[FieldError("Idempotency-Key", "reutilizada con otro contenido")],
            )
        return _response(Created(status, body, dict(headers or {})), replayed=True)
    created = await create()
    body = jsonable_encoder(created.body)
    answer = {
        **params,
        "status_code": created.status,
        "response_body": body,
        "response_headers": created.headers,
    }
    if isinstance(uow, LeanUnitOfWork):
        await uow.transaction.execute(statements.answer, answer)
    else:
        # Rides in the commit's one statement with the use case's other writes.
        table = uow.tables.idempotency_keys
        uow.defer(
            update(table)
            .where(table.c.tenant_id == uow.tenant_id, table.c.key == key)
            .values(
                status_code=created.status, response_body=body, response_headers=created.headers
            )
        )
    return _response(Created(created.status, body, created.headers), replayed=False)


def _response(created: Created, *, replayed: bool) -> JSONResponse:
    headers = dict(created.headers)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    try:
        # Use cases answer JSON-ready bodies (model_dump(mode="json")): encoding them
        # again value by value cost more than the rest of answering.
        return JSONResponse(created.body, status_code=created.status, headers=headers)
    except TypeError:
        body = jsonable_encoder(created.body)
        return JSONResponse(body, status_code=created.status, headers=headers)
