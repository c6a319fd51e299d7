"""HTTP routes of representaciones: staff record who may act for whom through the sede.

Thin: the rules live in service.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.common.db import tenant_transaction
from services.common.deps import IdempotencyKeyDep, RuntimeDep, actor_of
from services.common.errors import problem_responses
from services.common.idempotency import Created, run_idempotent
from services.registro.api import RegistroUser
from services.registro.representaciones import service
from services.registro.representaciones.schemas import (
    RepresentacionCreate,
    RepresentacionPage,
    RepresentacionRead,
    RevocacionCreate,
)

router = APIRouter(prefix="/api/v1/registro/representaciones", tags=["representaciones"])

_problems = problem_responses(401, 403, 404, 409, 422)


@router.post(
    "",
    status_code=201,
    response_model=RepresentacionRead,
    responses=_problems,
    summary="Registra una representación (apoderamiento)",
    description="Hace constar que el poderdante puede ser representado por el representante "
    "desde `vigente_desde` (hoy, si falta) hasta `vigente_hasta` (o hasta que se revoque). "
    "Con ella, un ciudadano puede presentar asientos por la sede en nombre del poderdante.",
)
async def registrar_representacion(
    body: RepresentacionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroUser,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Records a representation (201, Location)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            leida = await service.registrar_representacion(uow, data=body)
            location = f"{router.prefix}/{leida.id}"
            return Created(201, leida.model_dump(mode="json"), {"Location": location})

        return await run_idempotent(
            uow,
            key=idempotency_key,
            operation="registrar-representacion",
            payload=body,
            create=create,
        )


@router.get(
    "",
    response_model=RepresentacionPage,
    responses=_problems,
    summary="Lista las representaciones",
)
async def listar_representaciones(
    runtime: RuntimeDep,
    principal: RegistroUser,
    poderdante: Annotated[str | None, Query(max_length=17)] = None,
    representante: Annotated[str | None, Query(max_length=17)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RepresentacionPage:
    """The entity's representations, optionally of one poderdante or representante."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items, total = await service.listar_representaciones(
            session,
            tenant_id=principal.tenant,
            poderdante=poderdante.upper() if poderdante else None,
            representante=representante.upper() if representante else None,
            size=size,
            page=page,
        )
    return RepresentacionPage(items=items, total=total, page=page, size=size)


@router.get(
    "/{representacion_id}",
    response_model=RepresentacionRead,
    responses=_problems,
    summary="Consulta una representación",
)
async def consultar_representacion(
    representacion_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> RepresentacionRead:
    """One representation of the caller's entity."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_representacion(
            session, tenant_id=principal.tenant, representacion_id=representacion_id
        )


@router.post(
    "/{representacion_id}/revocar",
    response_model=RepresentacionRead,
    responses=_problems,
    summary="Revoca una representación",
)
async def revocar_representacion(
    representacion_id: str,
    body: RevocacionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroUser,
) -> RepresentacionRead:
    """Ends a representation from now on (it stays on record, revoked)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.revocar_representacion(
            uow, representacion_id=representacion_id, data=body
        )
