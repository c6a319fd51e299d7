"""HTTP routes of the worklist and of the units' members."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import RuntimeDep, actor_of, require_role
from services.common.errors import problem_responses
from services.tramitador.bandeja import service
from services.tramitador.bandeja.schemas import Bandeja, MiembrosUpdate
from services.tramitador.expedientes.motor import hoy_de

router = APIRouter(prefix="/api/v1/tramitador", tags=["tramitador", "bandeja"])

TramitadorUser = Annotated[Principal, Depends(require_role("tramitador"))]
AdminUser = Annotated[Principal, Depends(require_role("admin"))]


@router.get(
    "/bandeja",
    response_model=Bandeja,
    responses=problem_responses(401, 403, 422),
    summary="Bandeja de trámites pendientes",
)
async def leer_bandeja(
    runtime: RuntimeDep,
    principal: TramitadorUser,
    procedimiento: str | None = None,
    fase: str | None = None,
    vence_antes: date | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    contar: Annotated[
        bool, Query(description="Incluir los recuentos (solo en la primera página)")
    ] = True,
) -> Bandeja:
    """The caller's open trámites (assigned to them, to their roles or to their units),
    nearest due date first, with counts per procedure."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.leer_bandeja(
            session,
            principal=principal,
            filtros={"procedimiento": procedimiento, "fase": fase, "vence_antes": vence_antes},
            cursor=cursor,
            limit=limit,
            contar=contar,
            hoy=hoy_de(principal.tenant),
        )


@router.put(
    "/unidades/{unidad}/miembros",
    response_model=MiembrosUpdate,
    responses=problem_responses(401, 403, 422),
    summary="Fija los usuarios de una unidad",
)
async def fijar_miembros(
    unidad: Annotated[str, Path(min_length=1, max_length=100)],
    body: MiembrosUpdate,
    request: Request,
    runtime: RuntimeDep,
    principal: AdminUser,
) -> MiembrosUpdate:
    """The unit's trámites appear in these users' worklists."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        usuarios = await service.fijar_miembros(uow, unidad=unidad, usuarios=body.usuarios)
    return MiembrosUpdate(usuarios=usuarios)
