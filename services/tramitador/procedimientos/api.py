"""HTTP routes of the catalogue: read, import (YAML or JSON), publish, retire, export."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import PrincipalDep, RuntimeDep, actor_of, require_role
from services.common.errors import PayloadTooLarge, Unprocessable, problem_responses
from services.tramitador.procedimientos import service
from services.tramitador.procedimientos.domain import EstadoVersion
from services.tramitador.procedimientos.schemas import (
    ProcedimientoDetalle,
    ProcedimientoList,
    ProcedimientoRead,
)

router = APIRouter(
    prefix="/api/v1/tramitador/procedimientos", tags=["tramitador", "procedimientos"]
)

AdminUser = Annotated[Principal, Depends(require_role("admin"))]
Codigo = Annotated[str, Path(max_length=60, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Version = Annotated[int, Path(ge=1)]
MAX_DEFINICION = 1_000_000
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
# The smallest definition the package's JSON Schema accepts: two phases, one action.
_DEFINICION_MINIMA = {
    "codigo": "ejemplo-minimo",
    "nombre": "Procedimiento mínimo de ejemplo",
    "normativa": ["Ley 39/2015"],
    "plazo_resolucion": {"cantidad": 3, "unidad": "meses"},
    "silencio": "desestimatorio",
    "iniciacion": ["oficio"],
    "flujo": {
        "fase_inicial": "instruccion",
        "fases": [
            {"codigo": "instruccion", "nombre": "Instrucción"},
            {"codigo": "archivo", "nombre": "Archivo", "estado": "archivado"},
        ],
        "acciones": [
            {
                "codigo": "archivar",
                "nombre": "Archivar",
                "tipo": "archivar",
                "desde": ["instruccion"],
                "hacia": "archivo",
            }
        ],
    },
}
_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "La definición en YAML (`application/yaml`) o en JSON, "
        '`{"definicion": {...}}`; se valida con el esquema JSON del paquete.',
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["definicion"],
                    "properties": {"definicion": {"type": "object"}},
                },
                "example": {"definicion": _DEFINICION_MINIMA},
            },
        },
    }
}


@router.get(
    "",
    response_model=ProcedimientoList,
    responses=problem_responses(401),
    summary="Catálogo de procedimientos",
)
async def listar_procedimientos(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    estado: EstadoVersion | None = EstadoVersion.PUBLICADO,
) -> ProcedimientoList:
    """The council's procedures; by default the published versions (any authenticated caller)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items = await service.listar_procedimientos(
            session, tenant_id=principal.tenant, estado=estado
        )
    return ProcedimientoList(items=items)


@router.post(
    "",
    status_code=201,
    response_model=ProcedimientoDetalle,
    responses=problem_responses(401, 403, 413, 422),
    summary="Importa una definición como nueva versión en borrador",
    openapi_extra=_IMPORT_BODY,
)
async def importar_procedimiento(
    request: Request, runtime: RuntimeDep, principal: AdminUser
) -> JSONResponse:
    """Validates a definition and stores it as the next version, in ``borrador``."""
    body = await request.body()
    if len(body) > MAX_DEFINICION:
        raise PayloadTooLarge(f"Una definición no puede pasar de {MAX_DEFINICION} bytes.")
    tipo = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if tipo in _YAML_TYPES:
        definicion = service.leer_definicion(yaml_text=body.decode("utf-8", errors="replace"))
    else:
        try:
            data = json.loads(body)
        except ValueError:
            raise Unprocessable("El cuerpo no es JSON ni YAML.") from None
        if not isinstance(data, dict) or "definicion" not in data:
            raise Unprocessable("Falta `definicion`.")
        definicion = service.leer_definicion(data=data["definicion"])
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        created = await service.importar_definicion(uow, definicion=definicion)
    location = f"{router.prefix}/{created.codigo}/versiones/{created.version}"
    return JSONResponse(
        created.model_dump(mode="json"), status_code=201, headers={"Location": location}
    )


@router.get(
    "/{codigo}/versiones",
    response_model=list[ProcedimientoRead],
    responses=problem_responses(401, 404),
    summary="Versiones de un procedimiento",
)
async def listar_versiones(
    codigo: Codigo, runtime: RuntimeDep, principal: PrincipalDep
) -> list[ProcedimientoRead]:
    """Every version of a procedure, with its state."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.listar_versiones(session, tenant_id=principal.tenant, codigo=codigo)


@router.get(
    "/{codigo}/versiones/{version}",
    response_model=ProcedimientoDetalle,
    responses=problem_responses(401, 404),
    summary="Una versión con su definición completa",
)
async def consultar_version(
    codigo: Codigo, version: Version, runtime: RuntimeDep, principal: PrincipalDep
) -> ProcedimientoDetalle:
    """One version and its whole definition."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_version(
            session, tenant_id=principal.tenant, codigo=codigo, version=version
        )


@router.get(
    "/{codigo}/versiones/{version}/yaml",
    responses={200: {"content": {"application/yaml": {}}}, **problem_responses(401, 404)},
    summary="Exporta una versión en YAML",
)
async def exportar_version(
    codigo: Codigo, version: Version, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """The definition as a YAML file another council can import."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        text = await service.exportar_yaml(
            session, tenant_id=principal.tenant, codigo=codigo, version=version
        )
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{codigo}-v{version}.yaml"'},
    )


@router.post(
    "/{codigo}/versiones/{version}/publicar",
    response_model=ProcedimientoDetalle,
    responses=problem_responses(401, 403, 404, 409),
    summary="Publica una versión en borrador",
)
async def publicar_version(
    codigo: Codigo, version: Version, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> ProcedimientoDetalle:
    """The version becomes immutable and the one new expedientes start with; the previously
    published version is retired (its expedientes keep it)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.publicar_version(uow, codigo=codigo, version=version)


@router.post(
    "/{codigo}/versiones/{version}/retirar",
    response_model=ProcedimientoDetalle,
    responses=problem_responses(401, 403, 404, 409),
    summary="Retira una versión publicada",
)
async def retirar_version(
    codigo: Codigo, version: Version, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> ProcedimientoDetalle:
    """No new expedientes with this version; the open ones go on with it."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.retirar_version(uow, codigo=codigo, version=version)
