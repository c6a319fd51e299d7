"""HTTP routes of oficinas de registro, libros and the numbering mode.

Thin: the use cases live in service.py, the rules in domain.py. An
administrator (role ``admin``) manages; staff of the register (role ``registro``)
may read, since they choose the oficina they register at.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import RuntimeDep, actor_of, require_role
from services.common.errors import problem_responses
from services.common.inputs import DIR3_OFICINA_PARAMETRO
from services.registro.api import RegistroUser
from services.registro.domain import TipoAsiento
from services.registro.oficinas import service
from services.registro.oficinas.domain import EstadoLibro, EstadoOficina
from services.registro.oficinas.schemas import (
    CierreCreate,
    LibroCreate,
    LibroRead,
    NumeracionRead,
    NumeracionUpdate,
    OficinaCreate,
    OficinaRead,
)

# The code in the path, documented as the validator accepts it.
CodigoOficina = Annotated[
    str,
    Path(
        description="Código DIR3 de la oficina",
        examples=["O00002741"],
        json_schema_extra=DIR3_OFICINA_PARAMETRO,
    ),
]

router = APIRouter(prefix="/api/v1/registro", tags=["registro", "oficinas y libros"])

AdminUser = Annotated[Principal, Depends(require_role("admin"))]
_read = problem_responses(401, 403, 404)
_write = problem_responses(
    401, 403, 404, 409, 422, overrides={409: "Ya existe, o ya está en ese estado"}
)

_NUMERACION = """Modos: `central` (una secuencia por tipo y año para toda la entidad:
`E/2026/000001`) u `oficina` (una secuencia por oficina, tipo y año: tras el año, el
prefijo de la oficina con tres cifras y la secuencia con seis o más, p. ej.
`E/2026/002000012`, el asiento 12 de la oficina de prefijo 2). Sin configurar, la entidad
numera en modo central.

Un año se numera siempre en un único modo y sin huecos: el cambio rige en el acto si la
entidad aún no ha numerado nada este año, y si no desde el 1 de enero siguiente
(`proximo`). Pedir el modo vigente anula un cambio programado."""


@router.get(
    "/oficinas",
    response_model=list[OficinaRead],
    responses=_read,
    summary="Lista las oficinas de registro de la entidad",
)
async def listar_oficinas(
    runtime: RuntimeDep, principal: RegistroUser, estado: EstadoOficina | None = None
) -> list[OficinaRead]:
    """The caller's entity's oficinas, by code."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.listar_oficinas(session, tenant_id=principal.tenant, estado=estado)


@router.post(
    "/oficinas",
    status_code=201,
    response_model=OficinaRead,
    responses=_write,
    summary="Crea una oficina de registro",
)
async def crear_oficina(
    body: OficinaCreate, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> JSONResponse:
    """Creates an active oficina (201, Location); a code already used is a 409."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        oficina = await service.crear_oficina(uow, data=body)
    return JSONResponse(
        oficina.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/api/v1/registro/oficinas/{oficina.codigo}"},
    )


@router.get(
    "/oficinas/{codigo}",
    response_model=OficinaRead,
    responses=_read,
    summary="Consulta una oficina de registro",
)
async def consultar_oficina(
    codigo: CodigoOficina, runtime: RuntimeDep, principal: RegistroUser
) -> OficinaRead:
    """One oficina of the caller's entity."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_oficina(session, tenant_id=principal.tenant, codigo=codigo)


@router.post(
    "/oficinas/{codigo}/cerrar",
    response_model=OficinaRead,
    responses=_write,
    summary="Cierra una oficina de registro",
    description="Desde el cierre no se registra nada en la oficina (422 `oficina`). Sus "
    "libros conservan su estado. Cerrar una oficina ya cerrada es un 409.",
)
async def cerrar_oficina(
    codigo: CodigoOficina,
    body: CierreCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: AdminUser,
) -> OficinaRead:
    """Closes an oficina, saying why."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.cerrar_oficina(uow, codigo=codigo, data=body)


@router.post(
    "/oficinas/{codigo}/abrir",
    response_model=OficinaRead,
    responses=_write,
    summary="Reabre una oficina de registro cerrada",
)
async def abrir_oficina(
    codigo: CodigoOficina, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> OficinaRead:
    """Reopens a closed oficina."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.abrir_oficina(uow, codigo=codigo)


@router.get(
    "/libros",
    response_model=list[LibroRead],
    responses=_read,
    summary="Lista los libros de entrada y salida de la entidad",
)
async def listar_libros(
    runtime: RuntimeDep,
    principal: RegistroUser,
    tipo: TipoAsiento | None = None,
    oficina: str | None = None,
    estado: EstadoLibro | None = None,
) -> list[LibroRead]:
    """The caller's entity's libros, optionally of one tipo, oficina or estado."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.listar_libros(
            session,
            tenant_id=principal.tenant,
            tipo=tipo,
            oficina=oficina.strip().upper() if oficina else None,
            estado=estado,
        )


@router.post(
    "/libros",
    status_code=201,
    response_model=LibroRead,
    responses=_write,
    summary="Abre un libro de entrada o de salida",
    description="Un libro por tipo y ámbito: el central (sin `oficina`) o el de una oficina "
    "activa. Mientras la entidad no abre ningún libro de un tipo, ese tipo se registra en un "
    "libro implícito siempre abierto; desde que abre uno, cada asiento va al libro de su "
    "oficina o, si no lo hay, al central, que debe estar abierto (409 si no).",
)
async def crear_libro(
    body: LibroCreate, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> JSONResponse:
    """Opens a libro (201, Location); one that exists already is a 409."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        libro = await service.crear_libro(uow, data=body)
    return JSONResponse(
        libro.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/api/v1/registro/libros/{libro.id}"},
    )


@router.get(
    "/libros/{libro_id}",
    response_model=LibroRead,
    responses=_read,
    summary="Consulta un libro",
)
async def consultar_libro(libro_id: str, runtime: RuntimeDep, principal: RegistroUser) -> LibroRead:
    """One libro of the caller's entity."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_libro(session, tenant_id=principal.tenant, libro_id=libro_id)


@router.post(
    "/libros/{libro_id}/cerrar",
    response_model=LibroRead,
    responses=_write,
    summary="Cierra un libro",
    description="Espera a los asientos que se estén registrando en él; desde el cierre, "
    "registrar en ese libro es un 409 que lo nombra. Cerrar uno ya cerrado es un 409.",
)
async def cerrar_libro(
    libro_id: str, body: CierreCreate, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> LibroRead:
    """Closes a libro, saying why."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.cerrar_libro(uow, libro_id=libro_id, data=body)


@router.post(
    "/libros/{libro_id}/abrir",
    response_model=LibroRead,
    responses=_write,
    summary="Reabre un libro cerrado",
    description="El libro de una oficina cerrada no se reabre (409) hasta reabrir la oficina.",
)
async def abrir_libro(
    libro_id: str, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> LibroRead:
    """Reopens a closed libro."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.abrir_libro(uow, libro_id=libro_id)


@router.get(
    "/numeracion",
    response_model=NumeracionRead,
    responses=problem_responses(401, 403),
    summary="Consulta cómo numera la entidad",
    description=_NUMERACION,
)
async def consultar_numeracion(runtime: RuntimeDep, principal: RegistroUser) -> NumeracionRead:
    """The numbering mode of this year and any scheduled change."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_numeracion(session, tenant_id=principal.tenant)


@router.put(
    "/numeracion",
    response_model=NumeracionRead,
    responses=problem_responses(401, 403, 422),
    summary="Elige cómo numera la entidad (central o por oficina)",
    description=_NUMERACION,
)
async def configurar_numeracion(
    body: NumeracionUpdate, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> NumeracionRead:
    """Sets the numbering mode, at once or from next year; answers how it stands."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.configurar_numeracion(uow, data=body)
