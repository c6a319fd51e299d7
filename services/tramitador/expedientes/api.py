"""HTTP routes of the expedientes: search, open de oficio, read with the caller's actions,
act, resolve incidencias, and the citizen's own expedientes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import RuntimeDep, actor_of, require_role
from services.common.errors import Forbidden, problem_responses
from services.common.openapi_links import enlaces_a
from services.tramitador.documentos.schemas import DocumentoAdjunto, DocumentoRead
from services.tramitador.eni import service as eni
from services.tramitador.eni.repositorio_client import repositorio_de
from services.tramitador.expedientes import service
from services.tramitador.expedientes.domain import EstadoExpediente
from services.tramitador.expedientes.schemas import (
    AccionRequest,
    ExpedienteCreate,
    ExpedienteDetalle,
    ExpedienteList,
    IncidenciaResolver,
)

router = APIRouter(prefix="/api/v1/tramitador", tags=["tramitador", "expedientes"])

TramitadorUser = Annotated[Principal, Depends(require_role("tramitador"))]
CiudadanoUser = Annotated[Principal, Depends(require_role("ciudadano"))]
CodigoAccion = Annotated[str, Path(max_length=60, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Limit = Annotated[int, Query(ge=1, le=200)]
_problems = problem_responses(401, 403, 404)


@router.get(
    "/expedientes",
    response_model=ExpedienteList,
    responses=problem_responses(401, 403, 422),
    summary="Busca expedientes",
)
async def listar_expedientes(
    runtime: RuntimeDep,
    principal: TramitadorUser,
    asiento_id: str | None = None,
    numero: str | None = None,
    interesado: Annotated[str | None, Query(description="NIF o parte del nombre")] = None,
    procedimiento: str | None = None,
    estado: EstadoExpediente | None = None,
    fase: str | None = None,
    unidad: str | None = None,
    desde: datetime | None = None,
    hasta: datetime | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> ExpedienteList:
    """The council's expedientes, newest first; ``next_cursor`` gives the next page."""
    filtros = {
        "asiento_id": asiento_id,
        "numero": numero,
        "interesado": interesado,
        "procedimiento": procedimiento,
        "estado": estado.value if estado else None,
        "fase": fase,
        "unidad": unidad,
        "desde": desde,
        "hasta": hasta,
    }
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items, siguiente = await service.listar_expedientes(
            session, tenant_id=principal.tenant, filtros=filtros, cursor=cursor, limit=limit
        )
    return ExpedienteList(items=items, next_cursor=siguiente)


@router.post(
    "/expedientes",
    status_code=201,
    response_model=ExpedienteDetalle,
    responses=problem_responses(401, 403, 422),
    summary="Inicia un expediente de oficio",
    openapi_extra=enlaces_a(
        "expediente_id",
        "$response.body#/id",
        consultar="GET /api/v1/tramitador/expedientes/{expediente_id}",
        adjuntar="POST /api/v1/tramitador/expedientes/{expediente_id}/documentos",
    ),
)
async def iniciar_de_oficio(
    body: ExpedienteCreate, request: Request, runtime: RuntimeDep, principal: TramitadorUser
) -> JSONResponse:
    """Starts an expediente by the council's own decision (Ley 39/2015, art. 58)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        created = await service.abrir_expediente_de_oficio(uow, datos=body)
    detalle = await _detalle(runtime, principal, created.id)
    return JSONResponse(
        detalle.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"{router.prefix}/expedientes/{created.id}"},
    )


@router.get(
    "/expedientes/{expediente_id}",
    response_model=ExpedienteDetalle,
    responses=_problems,
    summary="Consulta un expediente",
)
async def consultar_expediente(
    expediente_id: str, runtime: RuntimeDep, principal: TramitadorUser
) -> ExpedienteDetalle:
    """Phase, open trámites, plazos with days left, history, documents and the actions
    the caller may take now."""
    return await _detalle(runtime, principal, expediente_id)


@router.post(
    "/expedientes/{expediente_id}/acciones/{codigo}",
    response_model=ExpedienteDetalle,
    responses=problem_responses(
        401, 403, 404, 409, 422, overrides={409: "Una condición de la acción no se cumple"}
    ),
    summary="Realiza una acción del procedimiento",
)
async def realizar_accion(
    expediente_id: str,
    codigo: CodigoAccion,
    request: Request,
    runtime: RuntimeDep,
    principal: TramitadorUser,
    body: AccionRequest | None = None,
) -> ExpedienteDetalle:
    """Takes one of the expediente's ``acciones``; a 409 names the unmet condition."""
    datos = (body or AccionRequest()).model_dump()
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        await service.realizar_accion(
            uow,
            expediente_id=expediente_id,
            codigo=codigo,
            datos=datos,
            roles=principal.roles,
            documents=runtime.document_workers,
        )
    return await _detalle(runtime, principal, expediente_id)


@router.post(
    "/expedientes/{expediente_id}/incidencias/{incidencia_id}/resolver",
    response_model=ExpedienteDetalle,
    responses=problem_responses(
        401, 403, 404, 409, 422, overrides={409: "La incidencia ya no está abierta"}
    ),
    summary="Resuelve una incidencia y repite la petición",
)
async def resolver_incidencia(
    expediente_id: str,
    incidencia_id: str,
    body: IncidenciaResolver,
    request: Request,
    runtime: RuntimeDep,
    principal: TramitadorUser,
) -> ExpedienteDetalle:
    """Gives what a failed notification or fee lacked (an interesado's channel data, a
    fee's importe) and sends the request again; the expediente goes on waiting for it."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        await service.resolver_incidencia(
            uow, expediente_id=expediente_id, incidencia_id=incidencia_id, datos=body
        )
    return await _detalle(runtime, principal, expediente_id)


@router.post(
    "/expedientes/{expediente_id}/documentos",
    status_code=201,
    response_model=DocumentoRead,
    responses=problem_responses(401, 403, 404, 409, 422, 502, 503),
    summary="Adjunta un documento del repositorio (y lo incorpora al foliado)",
)
async def adjuntar_documento(
    expediente_id: str,
    body: DocumentoAdjunto,
    request: Request,
    runtime: RuntimeDep,
    principal: TramitadorUser,
) -> DocumentoRead:
    """Adds a document already stored in the repositorio to the expediente: the same use
    case as ``POST …/foliado``, so it enters the foliado with the digest and ENI metadata
    the repositorio recorded (read as the caller, who needs the role ``documentos``)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        await eni.expediente_de(session, tenant_id=principal.tenant, expediente_id=expediente_id)
    token = request.headers.get("authorization", "").partition(" ")[2]
    version = await repositorio_de(request).version_actual(body.documento_id.lower(), token)
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        documento, _ = await eni.incorporar_adjunto(
            uow,
            expediente_id=expediente_id,
            documento_id=body.documento_id,
            titulo=body.titulo,
            version=version,
        )
    return documento


@router.get(
    "/mis-expedientes",
    response_model=ExpedienteList,
    responses=problem_responses(401, 403, 422),
    summary="Mis expedientes (ciudadano)",
)
async def mis_expedientes(
    runtime: RuntimeDep, principal: CiudadanoUser, cursor: str | None = None, limit: Limit = 50
) -> ExpedienteList:
    """The expedientes where the citizen who calls is the interesado."""
    nif = _nif(principal)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items, siguiente = await service.listar_expedientes(
            session,
            tenant_id=principal.tenant,
            filtros={"interesado_id": nif},
            cursor=cursor,
            limit=limit,
        )
    return ExpedienteList(items=items, next_cursor=siguiente)


@router.get(
    "/mis-expedientes/{expediente_id}",
    response_model=ExpedienteDetalle,
    responses=_problems,
    summary="Uno de mis expedientes, con su historia",
)
async def mi_expediente(
    expediente_id: str, runtime: RuntimeDep, principal: CiudadanoUser
) -> ExpedienteDetalle:
    """An expediente of the citizen (anybody else's is a 404); no staff actions."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_expediente(
            session,
            tenant_id=principal.tenant,
            expediente_id=expediente_id,
            roles=frozenset(),
            interesado=_nif(principal),
        )


def _nif(principal: Principal) -> str:
    if not principal.nif:
        raise Forbidden("El token del ciudadano no lleva NIF.")
    return principal.nif.upper()


async def _detalle(
    runtime: RuntimeDep, principal: Principal, expediente_id: str
) -> ExpedienteDetalle:
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_expediente(
            session, tenant_id=principal.tenant, expediente_id=expediente_id, roles=principal.roles
        )
