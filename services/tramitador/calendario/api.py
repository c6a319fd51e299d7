"""HTTP routes of the calendar: local holidays (admin) and plazo computation."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import PrincipalDep, RuntimeDep, actor_of, require_role
from services.common.errors import problem_responses
from services.tramitador.calendario import service
from services.tramitador.calendario.domain import Unidad
from services.tramitador.calendario.schemas import (
    FestivosLocalesUpdate,
    FestivosRead,
    PlazoCalculado,
)

router = APIRouter(prefix="/api/v1/tramitador/calendario", tags=["tramitador", "calendario"])

AdminUser = Annotated[Principal, Depends(require_role("admin"))]
Anio = Annotated[int, Path(ge=2000, le=2100)]


@router.put(
    "/{anio}/festivos-locales",
    response_model=FestivosRead,
    responses=problem_responses(401, 403, 422),
    summary="Fija las fiestas locales de un año",
)
async def fijar_festivos_locales(
    anio: Anio,
    body: FestivosLocalesUpdate,
    request: Request,
    runtime: RuntimeDep,
    principal: AdminUser,
) -> FestivosRead:
    """Replaces the council's local holidays of ``anio``: they are días inhábiles."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.fijar_festivos_locales(uow, anio=anio, fechas=body.fechas)


@router.get(
    "/{anio}/festivos",
    response_model=FestivosRead,
    responses=problem_responses(401),
    summary="Días inhábiles de un año",
)
async def consultar_festivos(
    anio: Anio, runtime: RuntimeDep, principal: PrincipalDep
) -> FestivosRead:
    """National, regional and local holidays of the caller's council in ``anio``."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_festivos(session, tenant_id=principal.tenant, anio=anio)


@router.get(
    "/plazos",
    response_model=PlazoCalculado,
    responses=problem_responses(401, 422),
    summary="Calcula el vencimiento de un plazo",
)
async def calcular_plazo(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    desde: date,
    cantidad: Annotated[int, Query(ge=0, le=3650)],
    unidad: Unidad,
    residencia: Annotated[
        str | None,
        Query(
            pattern=r"^\d{5}$",
            description="Código INE del municipio donde reside el interesado (art. 30.6)",
        ),
    ] = None,
) -> PlazoCalculado:
    """Ley 39/2015, art. 30, with the caller's council calendar: counting starts the day
    after ``desde`` and a plazo ending on an inhábil day moves to the next hábil day; a
    day inhábil where the interesado resides is inhábil too (art. 30.6)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.calcular_plazo(
            session,
            tenant_id=principal.tenant,
            desde=desde,
            cantidad=cantidad,
            unidad=unidad,
            residencia=residencia,
        )
