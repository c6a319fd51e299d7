"""HTTP routes of notificaciones: staff create, search and record postal events; the
addressee lists theirs, opens or rejects them.

Staff hold the role ``notificaciones``. A citizen holds ``ciudadano`` and a token
with the ``nif`` they authenticated with; they see only notifications addressed to
that NIF or to someone they represent, and anybody else's is a 404, like another
tenant's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from services.common.auth import Principal, bearer_token
from services.common.cpu import in_documents
from services.common.db import tenant_transaction
from services.common.deps import IdempotencyKeyDep, RuntimeDep, actor_of, require_role
from services.common.errors import Conflict, Forbidden, problem_responses
from services.common.idempotency import Created, run_idempotent
from services.common.openapi_links import enlaces_a
from services.notificaciones import service
from services.notificaciones.clock import Clock
from services.notificaciones.documentos import documentos_de
from services.notificaciones.domain import Estado
from services.notificaciones.impresos import impreso_postal
from services.notificaciones.schemas import (
    AccesoRead,
    IntentoCreate,
    NotificacionCiudadano,
    NotificacionCreate,
    NotificacionesCreadas,
    NotificacionList,
    NotificacionRead,
    PublicacionCreate,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/notificaciones", tags=["notificaciones"])

Personal = Annotated[Principal, Depends(require_role("notificaciones"))]
Ciudadano = Annotated[Principal, Depends(require_role("ciudadano"))]
_problems = problem_responses(401, 403, 404)
_cambios = problem_responses(401, 403, 404, 409, 422)


async def reloj(request: Request) -> Clock:
    """The app's clock (tests replace it with a controlled one)."""
    clock: Clock = request.app.state.clock
    return clock


RelojDep = Annotated[Clock, Depends(reloj)]


def _nif(principal: Principal) -> str:
    if not principal.nif:
        raise Forbidden("El token no indica el NIF del ciudadano (claim 'nif').")
    return principal.nif


@router.post(
    "",
    status_code=201,
    response_model=NotificacionesCreadas,
    responses={**_cambios, **problem_responses(503)},
    summary="Crea las notificaciones de un documento",
    openapi_extra=enlaces_a(
        "notificacion_id",
        "$response.body#/items/0/id",
        consultar="GET /api/v1/notificaciones/{notificacion_id}",
        acceder="POST /api/v1/notificaciones/{notificacion_id}/acceder",
        rechazar="POST /api/v1/notificaciones/{notificacion_id}/rechazar",
    ),
)
async def crear_notificaciones(
    body: NotificacionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: Personal,
    clock: RelojDep,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """One notification per interesado; the document must exist in the repositorio (else 422).

    The repositorio is asked first, as the caller: nothing is written unless the
    document exists and the caller may read it.
    """
    documento = await documentos_de(request).consultar(
        body.documento_id, bearer_token(request.headers.get("authorization"))
    )
    tenant = await runtime.tenants.get(principal.tenant) if runtime.tenants else None
    emisor = tenant.nombre if tenant else f"Entidad {principal.tenant}"
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            creadas = await service.crear_notificaciones(
                uow, datos=body, documento=documento, emisor=emisor, ahora=clock.now()
            )
            return Created(201, NotificacionesCreadas(items=creadas).model_dump(mode="json"), {})

        return await run_idempotent(
            uow, key=idempotency_key, operation="crear-notificaciones", payload=body, create=create
        )


@router.get(
    "", response_model=NotificacionList, responses=_problems, summary="Busca notificaciones"
)
async def listar_notificaciones(
    runtime: RuntimeDep,
    principal: Personal,
    estado: Estado | None = None,
    expediente_id: Annotated[str | None, Query(max_length=100)] = None,
    interesado: Annotated[str | None, Query(max_length=20, description="NIF")] = None,
    desde: Annotated[datetime | None, Query(description="Creadas desde (incluido)")] = None,
    hasta: Annotated[datetime | None, Query(description="Creadas hasta (excluido)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> NotificacionList:
    """The entity's notifications by state, expediente, interesado and creation dates."""
    filtros = service.Filtros(
        estado=estado, expediente_id=expediente_id, interesado=interesado, desde=desde, hasta=hasta
    )
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items = await service.listar_notificaciones(
            session, filtros=filtros, limit=limit, offset=offset
        )
    return NotificacionList(items=items)


@router.get(
    "/mias",
    response_model=list[NotificacionCiudadano],
    responses=_problems,
    summary="Mis notificaciones (carpeta ciudadana)",
)
async def listar_mias(
    runtime: RuntimeDep,
    principal: Ciudadano,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[NotificacionCiudadano]:
    """The caller's notifications and those of whom they represent: sender and concepto."""
    nif = _nif(principal)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.listar_mias(session, nif=nif, limit=limit, offset=offset)


@router.get(
    "/{notificacion_id}",
    response_model=NotificacionRead,
    responses=_problems,
    summary="Consulta una notificación",
)
async def consultar_notificacion(
    notificacion_id: str, runtime: RuntimeDep, principal: Personal
) -> NotificacionRead:
    """One notification of the entity, with its postal attempts."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.get_notificacion(session, notificacion_id=notificacion_id)


def _expirada(notificacion_id: str) -> Conflict:
    return Conflict(
        f"La notificación {notificacion_id} expiró: pasaron diez días naturales desde su puesta "
        "a disposición sin acceder a ella, y se tiene por rechazada (Ley 39/2015, art. 43.2)."
    )


CasoCiudadano = Callable[..., Awaitable[NotificacionCiudadano | None]]


async def _decide_el_destinatario(
    caso: CasoCiudadano,
    notificacion_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: Principal,
    clock: Clock,
) -> NotificacionCiudadano:
    """Runs the addressee's decision (open, reject); 409 once it expired, committed first."""
    nif = _nif(principal)
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        vista = await caso(uow, notificacion_id=notificacion_id, nif=nif, ahora=clock.now())
    if vista is None:
        raise _expirada(notificacion_id)
    return vista


@router.post(
    "/{notificacion_id}/acceder",
    response_model=AccesoRead,
    responses=_cambios,
    summary="Abre una notificación (queda practicada)",
)
async def acceder(
    notificacion_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: Ciudadano,
    clock: RelojDep,
) -> Any:
    """The addressee or their representative opens it: practicada now, with its document."""
    return await _decide_el_destinatario(
        service.acceder, notificacion_id, request, runtime, principal, clock
    )


@router.post(
    "/{notificacion_id}/rechazar",
    response_model=NotificacionCiudadano,
    responses=_cambios,
    summary="Rechaza una notificación",
)
async def rechazar(
    notificacion_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: Ciudadano,
    clock: RelojDep,
) -> NotificacionCiudadano:
    """The addressee rejects it: the trámite is held as made (art. 41.5)."""
    return await _decide_el_destinatario(
        service.rechazar, notificacion_id, request, runtime, principal, clock
    )


@router.get(
    "/{notificacion_id}/impreso",
    response_class=Response,
    responses={
        **_cambios,
        200: {"content": {"application/pdf": {}}, "description": "Notificación y acuse (PDF)"},
    },
    summary="Notificación postal imprimible con su acuse de recibo",
)
async def impreso(notificacion_id: str, runtime: RuntimeDep, principal: Personal) -> Response:
    """The postal notification and its acuse de recibo, with the id as a barcode (PDF)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        notificacion = await service.get_notificacion(session, notificacion_id=notificacion_id)
    if notificacion.canal != "postal":
        raise Conflict("Solo las notificaciones en papel tienen impreso y acuse de recibo.")
    # Rendering is CPU work: in the document workers, never on the loop.
    pdf = await in_documents(
        runtime.document_workers, principal.tenant, impreso_postal, notificacion
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="notificacion-{notificacion.id}.pdf"'},
    )


@router.post(
    "/{notificacion_id}/intentos",
    response_model=NotificacionRead,
    responses=_cambios,
    summary="Registra un intento de entrega postal",
)
async def registrar_intento(
    notificacion_id: str,
    body: IntentoCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: Personal,
    clock: RelojDep,
) -> NotificacionRead:
    """Records what the postal operator reports; two failures lead to the BOE (art. 42.2, 44)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.registrar_intento(
            uow, notificacion_id=notificacion_id, intento=body, ahora=clock.now()
        )


@router.post(
    "/{notificacion_id}/publicacion",
    response_model=NotificacionRead,
    responses=_cambios,
    summary="Registra la publicación en el tablón edictal del BOE",
)
async def publicar_edicto(
    notificacion_id: str,
    body: PublicacionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: Personal,
    clock: RelojDep,
) -> NotificacionRead:
    """The anuncio was published: the notification is practicada on that day (art. 44)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.publicar_edicto(
            uow, notificacion_id=notificacion_id, publicacion=body, ahora=clock.now()
        )
