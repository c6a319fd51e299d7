"""HTTP routes of an asiento's justificante: where it stands, and asking for it again."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.common.db import tenant_transaction
from services.common.deps import (
    RuntimeDep,
    actor_of,
)
from services.common.reconciler import stalled_before
from services.registro.api import (
    PROBLEMAS,
    RegistroOCiudadano,
    RegistroUser,
    fallida,
    pendiente,
    solo_suyos,
)
from services.registro.justificantes import service
from services.registro.justificantes.domain import EstadoJustificante
from services.registro.justificantes.schemas import (
    JustificanteEmitido,
    JustificantePendiente,
    JustificanteRead,
    JustificantesEnCola,
)

router = APIRouter(prefix="/api/v1/registro", tags=["registro"])


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
    return pendiente(body, location=_justificante_url(asiento_id))


def _fallido(request: Request, justificante: JustificanteRead) -> JSONResponse:
    """409 problem, plus what the client needs to decide on a retry."""
    return fallida(
        request,
        justificante,
        detail=f"No se pudo emitir el justificante: {justificante.motivo}",
        title="Justificante no emitido",
        slug="justificante-fallido",
        location=_justificante_url(justificante.asiento_id),
    )


@router.get(
    "/justificantes/cola",
    response_model=JustificantesEnCola,
    responses={code: PROBLEMAS[code] for code in (401, 403)},
    summary="Justificantes de la entidad que esperan su emisión",
    description="Cuántos justificantes de la entidad se están emitiendo y desde cuándo espera "
    "el más antiguo (la cola de la cadena de emisión), y cuántos fallaron. La misma cifra, "
    "para todas las entidades, está en /metrics (consistorio_registro_justificantes_pendientes).",
)
async def consultar_cola(runtime: RuntimeDep, principal: RegistroUser) -> JustificantesEnCola:
    """The caller's entity's backlog of justificantes, for staff watching the chain."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_cola(session, tenant_id=principal.tenant)


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
        **{code: PROBLEMAS[code] for code in (401, 403, 404, 409)},
    },
    summary="Consulta el justificante de un asiento",
)
async def consultar_justificante(
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroOCiudadano
) -> JSONResponse:
    """Sends the caller to the issued justificante, or says it is still pending or failed.

    A citizen gets the justificante of an asiento they presented (anybody else's is a 404).
    """
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        justificante = await service.consultar_justificante(
            session,
            tenant_id=principal.tenant,
            asiento_id=asiento_id,
            registrado_por=solo_suyos(principal),
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
    responses=PROBLEMAS,
    summary="Vuelve a pedir un justificante que no se pudo emitir",
    description="Pide de nuevo el justificante como una solicitud nueva al repositorio. 409 "
    "si ya está emitido, o en emisión desde hace menos de RECONCILER_STALLED_AFTER_SECONDS "
    "(una emisión más antigua se da por perdida y se pide de nuevo).",
)
async def reintentar_justificante(
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """A failed or stalled justificante is asked for again, as a new request to the repositorio."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        await service.reintentar_justificante(
            uow,
            asiento_id=asiento_id,
            stalled_before=stalled_before(runtime.settings),
            documents=runtime.document_workers,
        )
    return _pendiente(asiento_id)
