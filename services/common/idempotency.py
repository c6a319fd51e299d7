"""Idempotent creating POSTs: a retry with the same ``Idempotency-Key`` replays the
first answer and changes nothing.

The key is claimed in the use case's own transaction with an insert that waits
on a concurrent holder of the same key, so two simultaneous retries cannot both
create: the second sees the first's stored answer once it commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.errors import FieldError, Unprocessable
from services.common.uow import UnitOfWork

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


async def run_idempotent(
    uow: UnitOfWork,
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
    table = uow.tables.idempotency_keys
    fingerprint = request_fingerprint(payload)
    claimed = await uow.session.execute(
        pg_insert(table)
        .values(tenant_id=uow.tenant_id, key=key, operation=operation, request_hash=fingerprint)
        .on_conflict_do_nothing()
        .returning(table.c.key)
    )
    if claimed.first() is None:
        row = (
            await uow.session.execute(
                select(table).where(table.c.tenant_id == uow.tenant_id, table.c.key == key)
            )
        ).one()
        if row.operation != operation or row.request_hash != fingerprint:
            raise Unprocessable(
                "Idempotency-Key ya usada con otra petición; use una clave nueva.",
                errors=[FieldError("Idempotency-Key", "reutilizada con otro contenido")],
            )
        stored = Created(row.status_code, row.response_body, dict(row.response_headers or {}))
        return _response(stored, replayed=True)
    created = await create()
    body = jsonable_encoder(created.body)
    uow.defer(
        update(table)
        .where(table.c.tenant_id == uow.tenant_id, table.c.key == key)
        .values(status_code=created.status, response_body=body, response_headers=created.headers)
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
