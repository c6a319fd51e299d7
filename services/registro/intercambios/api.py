"""HTTP routes of SICRES 3.0 exchanges: export an asiento, receive, accept, reject, consult.

Thin: the standard lives in sicres.py, the use cases in service.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from services.common.auth import bearer_token
from services.common.db import tenant_transaction
from services.common.deps import RuntimeDep, actor_of
from services.common.errors import (
    FieldError,
    PayloadTooLarge,
    ProblemError,
    Unprocessable,
    problem_responses,
)
from services.common.runtime import ServiceRuntime
from services.common.tenants import Tenant
from services.registro.anexos.domain import Limites, max_cuerpo
from services.registro.anexos.repositorio_client import repositorio_de
from services.registro.api import RegistroUser
from services.registro.asientos import service as asientos
from services.registro.asientos.domain import EstadoAsiento
from services.registro.intercambios import service
from services.registro.intercambios.schemas import (
    AceptacionCreate,
    EstadoIntercambio,
    IntercambioRead,
    RechazoCreate,
)
from services.registro.intercambios.sicres import ROOT

router = APIRouter(prefix="/api/v1/registro", tags=["registro", "SICRES 3.0"])


def max_fichero_bytes(runtime: ServiceRuntime) -> int:
    """The largest exchange file taken in: one that carries anexos up to the register's own
    limits in base64 (what our own export can produce), plus room for the XML around them."""
    return max_cuerpo(Limites.de(runtime.settings))


XML = "application/xml"
# The SICRES 3.0 reference sample, without its anexos (which it sends without content).
EJEMPLO_FICHERO = (Path(__file__).parent / "sicres3" / "ejemplo-ficheroIntercambio.xml").read_text(
    encoding="ascii"
)
_ACCEPTED_TYPES = ("application/xml", "text/xml")


class UnsupportedMediaType(ProblemError):
    status = 415
    slug = "tipo-no-admitido"


async def _entidad(runtime: ServiceRuntime, tenant: str) -> Tenant:
    """The caller's entity: its DIR3 is the SICRES entidad registral of origin."""
    entidad = await runtime.tenants.get(tenant) if runtime.tenants is not None else None
    if entidad is None:
        raise Unprocessable(f"La entidad {tenant} no está en el registro de entidades.")
    return entidad


@router.get(
    "/asientos/{asiento_id}/sicres",
    response_class=Response,
    responses={
        200: {"content": {XML: {}}, "description": "Fichero_Intercambio_SICRES_3 (UTF-8)"},
        **problem_responses(
            401,
            403,
            404,
            409,
            502,
            503,
            overrides={
                403: "Sin el rol necesario (los anexos se leen del repositorio con el rol "
                "documentos)",
                409: "El asiento está anulado, tiene datos que SICRES 3.0 no admite, o un "
                "anexo aún no está en el repositorio",
                502: "El repositorio devolvió un anexo que no coincide con su SHA-256",
            },
        ),
    },
    summary="Exporta un asiento como fichero de intercambio SICRES 3.0",
    description="Cada exportación es un intercambio nuevo, con su Identificador_Intercambio "
    "(código DIR3 de la entidad, año con dos cifras y contador de ocho). Lleva los anexos en "
    "base64 con su Hash (SHA-256), leídos del repositorio en nombre de quien exporta: si el "
    "asiento tiene anexos, hace falta también el rol `documentos`.",
)
async def exportar_sicres(
    asiento_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroUser,
) -> Response:
    """The asiento as a Fichero_Intercambio_SICRES_3 that validates against the schema."""
    entidad = await _entidad(runtime, principal.tenant)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        asiento = await asientos.consultar_asiento(
            session, tenant_id=principal.tenant, asiento_id=asiento_id
        )
    contenidos: list[bytes | None] = []
    if asiento.anexos and asiento.estado is not EstadoAsiento.ANULADO:
        # Read before the export's transaction: no HTTP call waits on its counter lock.
        token = bearer_token(request.headers.get("authorization"))
        contenidos = await repositorio_de(request).contenidos(asiento.anexos, token)
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        identificador, data = await service.exportar_asiento(
            uow, asiento_id=asiento_id, entidad=entidad, contenidos=contenidos
        )
    return Response(
        data,
        media_type=f"{XML}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{identificador}.xml"',
            "X-Identificador-Intercambio": identificador,
        },
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"El fichero de intercambio supera el máximo de {limit} bytes.",
        errors=[FieldError("body", f"máximo {limit} bytes")],
    )


@router.post(
    "/intercambios",
    status_code=201,
    response_model=IntercambioRead,
    responses=problem_responses(401, 403, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                XML: {
                    "schema": {"type": "string", "format": "binary"},
                    "description": f"Un {ROOT}, en UTF-8 o ISO-8859-1 según su prólogo XML",
                    "example": EJEMPLO_FICHERO,
                }
            },
        }
    },
    summary="Recibe un fichero de intercambio SICRES 3.0",
    description="Valida el fichero contra el XSD de SICRES 3.0 (422 con los errores y sus "
    "líneas), comprueba el Hash de cada anexo que trae contenido (422 si no coincide; los que "
    "llegan sin contenido se guardan marcados) y lo deja pendiente (`recibido`) hasta que se "
    "acepte o se rechace.",
)
async def recibir_intercambio(
    request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """Stores a received exchange file pending a decision; answers it (201, Location)."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in _ACCEPTED_TYPES:
        raise UnsupportedMediaType("Envíe el fichero como application/xml.")
    data = await _read_body(request, max_fichero_bytes(runtime))
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        intercambio = await service.recibir_intercambio(uow, data=data)
    return JSONResponse(
        intercambio.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/api/v1/registro/intercambios/{intercambio.id}"},
    )


@router.get(
    "/intercambios",
    response_model=list[IntercambioRead],
    responses=problem_responses(401, 403),
    summary="Lista los intercambios recibidos",
)
async def listar_intercambios(
    runtime: RuntimeDep,
    principal: RegistroUser,
    estado: EstadoIntercambio | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """The entity's received exchanges, newest first; X-Total-Count says how many match."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items, total = await service.listar_intercambios(
            session, tenant_id=principal.tenant, estado=estado, size=size, page=page
        )
    return JSONResponse(
        [i.model_dump(mode="json") for i in items], headers={"X-Total-Count": str(total)}
    )


@router.get(
    "/intercambios/{intercambio_id}",
    response_model=IntercambioRead,
    responses=problem_responses(401, 403, 404),
    summary="Consulta un intercambio recibido",
)
async def consultar_intercambio(
    intercambio_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> IntercambioRead:
    """One received exchange of the caller's entity."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_intercambio(
            session, tenant_id=principal.tenant, intercambio_id=intercambio_id
        )


@router.get(
    "/intercambios/{intercambio_id}/mensaje",
    response_class=Response,
    responses={
        200: {"content": {XML: {}}, "description": "De_Mensaje SICRES 3.0 (UTF-8)"},
        **problem_responses(
            401, 403, 404, 409, overrides={409: "Rechazado: se devuelve el fichero, no un mensaje"}
        ),
    },
    summary="Mensaje SICRES 3.0 para el origen: ACK o confirmación",
    description="Lo que este registro contesta al registro de origen, según el estado del "
    "intercambio: recibido, un ACK (Tipo_Mensaje 01) con los Identificador_Fichero recibidos; "
    "aceptado, una confirmación (02) con el número y la fecha de registro aquí. Valida contra "
    "mensaje.xsd.",
)
async def mensaje_intercambio(
    intercambio_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> Response:
    """The De_Mensaje this register owes the origin for the exchange."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        data = await service.mensaje_de(
            session, tenant_id=principal.tenant, intercambio_id=intercambio_id
        )
    return Response(data, media_type=f"{XML}; charset=utf-8")


@router.get(
    "/intercambios/{intercambio_id}/rechazo",
    response_class=Response,
    responses={
        200: {"content": {XML: {}}, "description": "Fichero_Intercambio_SICRES_3 de rechazo"},
        **problem_responses(401, 403, 404, 409, overrides={409: "No está rechazado"}),
    },
    summary="Fichero de rechazo para el origen (Tipo_Anotacion 04)",
    description="El fichero recibido, tal como llegó, con Tipo_Anotacion 04 (rechazo) y el "
    "motivo en Observaciones_Apunte (SICRES admite 50 caracteres; el motivo completo queda "
    "en el registro y en el evento registro.intercambio.rechazado.v1).",
)
async def rechazo_intercambio(
    intercambio_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> Response:
    """The rejected exchange's file as it goes back to its origin."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        data = await service.rechazo_de(
            session, tenant_id=principal.tenant, intercambio_id=intercambio_id
        )
    return Response(data, media_type=f"{XML}; charset=utf-8")


@router.post(
    "/intercambios/{intercambio_id}/aceptar",
    response_model=IntercambioRead,
    responses=problem_responses(
        401, 403, 404, 409, 422, overrides={409: "El intercambio ya fue aceptado o rechazado"}
    ),
    summary="Acepta un intercambio: lo registra como entrada de esta entidad",
)
async def aceptar_intercambio(
    intercambio_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroUser,
    body: AceptacionCreate | None = None,
) -> IntercambioRead:
    """Registers a pending exchange as a new entrada (own number and date) and answers it.

    The body is optional: ``{"oficina": "O00002741"}`` registers it in that oficina.
    """
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.aceptar_intercambio(uow, intercambio_id=intercambio_id, data=body)


@router.post(
    "/intercambios/{intercambio_id}/rechazar",
    response_model=IntercambioRead,
    responses=problem_responses(
        401, 403, 404, 409, 422, overrides={409: "El intercambio ya fue aceptado o rechazado"}
    ),
    summary="Rechaza un intercambio, con su motivo",
)
async def rechazar_intercambio(
    intercambio_id: str,
    body: RechazoCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroUser,
) -> IntercambioRead:
    """Rejects a pending exchange; nothing is registered."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.rechazar_intercambio(uow, intercambio_id=intercambio_id, data=body)
