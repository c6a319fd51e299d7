"""HTTP routes of the registro: thin, the rules live in domain.py and service.py."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import IdempotencyKeyDep, RuntimeDep, actor_of, require_role
from services.common.errors import PROBLEM_JSON, problem_response, problem_responses
from services.common.idempotency import Created, run_idempotent
from services.registro import service
from services.registro.domain import TipoAsiento
from services.registro.justificante import EstadoJustificante
from services.registro.schemas import (
    AsientoCreate,
    AsientoPage,
    AsientoRead,
    JustificanteEmitido,
    JustificantePendiente,
    JustificanteRead,
)

router = APIRouter(prefix="/api/v1/registro", tags=["registro"])

RegistroUser = Annotated[Principal, Depends(require_role("registro"))]
_problems = problem_responses(
    401,
    403,
    404,
    409,
    422,
    overrides={409: "El justificante no se pudo emitir, o no admite esa operación en su estado"},
)
# A client polling a pending justificante asks again after this many seconds.
_RETRY_AFTER_SECONDS = "2"


@router.post(
    "/asientos",
    status_code=201,
    response_model=AsientoRead,
    responses=_problems,
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
    responses=_problems,
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
    responses=_problems,
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


def _justificante_url(asiento_id: str) -> str:
    return f"/api/v1/registro/asientos/{asiento_id}/justificante"


def _pendiente(asiento_id: str) -> JSONResponse:
    body = JustificantePendiente(
        type="https://consistorio.es/problemas/justificante-pendiente",
        title="Justificante en emisión",
        detail="El justificante del asiento se está emitiendo; vuelva a consultarlo en unos "
        "segundos.",
        asiento_id=asiento_id,
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Retry-After": _RETRY_AFTER_SECONDS, "Location": _justificante_url(asiento_id)},
    )


def _fallido(request: Request, justificante: JustificanteRead) -> JSONResponse:
    problem = problem_response(
        409,
        f"No se pudo emitir el justificante: {justificante.motivo}",
        title="Justificante no emitido",
        slug="justificante-fallido",
        instance=request.url.path,
    )
    # The problem's own members plus what the client needs to decide on a retry.
    body: dict[str, Any] = json.loads(bytes(problem.body))
    body.update(
        estado=justificante.estado.value,
        motivo=justificante.motivo,
        codigo=justificante.codigo,
        intento=justificante.intento,
        reintentar=f"{_justificante_url(justificante.asiento_id)}/reintentar",
    )
    return JSONResponse(body, status_code=409, media_type=PROBLEM_JSON)


@router.get(
    "/asientos/{asiento_id}/justificante",
    status_code=303,
    response_model=JustificanteEmitido,
    responses={
        303: {
            "description": "Emitido: Location lleva al PDF sellado, público, en "
            "/verificar/{csv}/documento",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        202: {
            "model": JustificantePendiente,
            "description": "En emisión: vuelva a consultar tras Retry-After segundos",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        **{code: _problems[code] for code in (401, 403, 404, 409)},
    },
    summary="Consulta el justificante de un asiento",
)
async def consultar_justificante(
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """Sends the caller to the issued justificante, or says it is still pending or failed."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        justificante = await service.get_justificante(
            session, tenant_id=principal.tenant, asiento_id=asiento_id
        )
    if justificante is None or justificante.estado is EstadoJustificante.PENDIENTE:
        return _pendiente(asiento_id)
    if justificante.estado is EstadoJustificante.FALLIDO:
        return _fallido(request, justificante)
    assert justificante.csv and justificante.url_verificacion and justificante.documento_id
    assert justificante.version is not None
    body = JustificanteEmitido(
        csv=justificante.csv,
        url_verificacion=justificante.url_verificacion,
        documento_id=justificante.documento_id,
        version=justificante.version,
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=303,
        # Relative: the public verification path is served on the same origin (the gateway).
        headers={"Location": f"/verificar/{justificante.csv}/documento"},
    )


@router.post(
    "/asientos/{asiento_id}/justificante/reintentar",
    status_code=202,
    response_model=JustificantePendiente,
    responses=_problems,
    summary="Vuelve a pedir un justificante que no se pudo emitir",
)
async def reintentar_justificante(
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """A failed justificante is asked for again, as a new request to the repositorio."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        await service.retry_justificante(uow, asiento_id=asiento_id)
    return _pendiente(asiento_id)
