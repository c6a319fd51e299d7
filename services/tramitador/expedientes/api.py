"""HTTP routes of the tramitador."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import PrincipalDep, RuntimeDep, require_role
from services.common.errors import problem_responses
from services.tramitador.expedientes import service
from services.tramitador.expedientes.schemas import (
    ExpedienteList,
    ExpedienteRead,
    ProcedimientoList,
)

router = APIRouter(prefix="/api/v1/tramitador", tags=["tramitador"])

TramitadorUser = Annotated[Principal, Depends(require_role("tramitador"))]
_problems = problem_responses(401, 403, 404)


@router.get(
    "/expedientes",
    response_model=ExpedienteList,
    responses=_problems,
    summary="Lista expedientes",
)
async def listar_expedientes(
    runtime: RuntimeDep,
    principal: TramitadorUser,
    asiento_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ExpedienteList:
    """The entity's expedientes; ``asiento_id`` finds the one an asiento opened."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items = await service.list_expedientes(
            session, tenant_id=principal.tenant, asiento_id=asiento_id, limit=limit
        )
    return ExpedienteList(items=items)


@router.get(
    "/expedientes/{expediente_id}",
    response_model=ExpedienteRead,
    responses=_problems,
    summary="Consulta un expediente",
)
async def consultar_expediente(
    expediente_id: str, runtime: RuntimeDep, principal: TramitadorUser
) -> ExpedienteRead:
    """One expediente of the caller's entity."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.get_expediente(
            session, tenant_id=principal.tenant, expediente_id=expediente_id
        )


@router.get(
    "/procedimientos",
    response_model=ProcedimientoList,
    responses=_problems,
    summary="Catálogo de procedimientos",
)
async def listar_procedimientos(runtime: RuntimeDep, principal: PrincipalDep) -> ProcedimientoList:
    """The catalogue of procedimientos (any authenticated caller)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return ProcedimientoList(items=await service.list_procedimientos(session))
