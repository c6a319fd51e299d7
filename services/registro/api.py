"""HTTP routes of the registro: thin, the rules live in domain.py and service.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import IdempotencyKeyDep, RuntimeDep, actor_of, require_role
from services.common.errors import PROBLEM_JSON
from services.common.idempotency import Created, run_idempotent
from services.registro import service
from services.registro.domain import TipoAsiento
from services.registro.schemas import AsientoCreate, AsientoPage, AsientoRead

router = APIRouter(prefix="/api/v1/registro", tags=["registro"])

RegistroUser = Annotated[Principal, Depends(require_role("registro"))]
_problems = {
    code: {"content": {PROBLEM_JSON: {}}, "description": text}
    for code, text in {
        401: "Sin token válido",
        403: "Sin el rol necesario",
        404: "No existe (o es de otra entidad)",
        422: "Datos no válidos",
    }.items()
}


@router.post(
    "/asientos",
    status_code=201,
    response_model=AsientoRead,
    responses=_problems,  # type: ignore[arg-type]
    summary="Registra un asiento",
)
async def registrar_asiento(
    body: AsientoCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroUser,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Registers an asiento and answers it with its number (201, Location)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            asiento = await service.register_asiento(uow, data=body)
            location = f"/api/v1/registro/asientos/{asiento.id}"
            return Created(201, asiento.model_dump(mode="json"), {"Location": location})

        return await run_idempotent(
            uow, key=idempotency_key, operation="registrar-asiento", payload=body, create=create
        )


@router.get(
    "/asientos/{asiento_id}",
    response_model=AsientoRead,
    responses=_problems,  # type: ignore[arg-type]
    summary="Consulta un asiento",
)
async def consultar_asiento(
    asiento_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> AsientoRead:
    """One asiento of the caller's entity."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.get_asiento(session, tenant_id=principal.tenant, asiento_id=asiento_id)


@router.get(
    "/asientos",
    response_model=AsientoPage,
    responses=_problems,  # type: ignore[arg-type]
    summary="Lista los asientos",
)
async def listar_asientos(
    runtime: RuntimeDep,
    principal: RegistroUser,
    tipo: TipoAsiento | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AsientoPage:
    """The entity's asientos, newest first, paginated."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items, total = await service.list_asientos(
            session, tenant_id=principal.tenant, tipo=tipo, page=page, size=size
        )
    return AsientoPage(items=items, total=total, page=page, size=size)
