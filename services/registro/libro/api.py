"""HTTP routes of the libro de registro exports: ask for one, poll it, download the file.

Thin: the job lives in service.py, the formats in domain.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.common.db import tenant_transaction
from services.common.deps import RuntimeDep, actor_of
from services.common.errors import FieldError, Unprocessable, problem_responses
from services.common.runtime import ServiceRuntime
from services.common.tenants import Tenant
from services.registro.api import RETRY_AFTER_SECONDS, RegistroUser
from services.registro.domain import TipoAsiento
from services.registro.libro import domain as libro
from services.registro.libro import service
from services.registro.libro.schemas import ExportacionCreate, ExportacionRead

router = APIRouter(prefix="/api/v1/registro", tags=["registro", "libro de registro"])

_BASE = "/api/v1/registro/libros/exportaciones"


async def _entidad(runtime: ServiceRuntime, tenant: str) -> Tenant:
    """The caller's entity: the PDF names it on every page."""
    entidad = await runtime.tenants.get(tenant) if runtime.tenants is not None else None
    if entidad is None:
        raise Unprocessable(f"La entidad {tenant} no está en el registro de entidades.")
    return entidad


_PEDIR = """Crea una exportación del libro de entrada o de salida de un periodo y la
ejecuta en segundo plano; responde 202 con el trabajo y su Location, que se consulta hasta
que `estado` sea `terminada` (`hechos` de `total`, `porcentaje`).

Fechas: `desde` incluida y `hasta` excluida, fechas locales de la entidad (península o
Canarias); el periodo es de un día a un año (si no, 422). Se exporta el libro tal como
está al empezar: lo que se registre mientras tanto no entra.

CSV: UTF-8 con BOM (marca de orden de bytes, para que las hojas de cálculo lean bien los
acentos), separado por `;`, una fila por asiento con su estado (y, si está anulado, cuándo
y por qué). PDF: hasta 10.000 asientos; para más, CSV o un periodo más corto."""


@router.post(
    "/libros/exportaciones",
    status_code=202,
    response_model=ExportacionRead,
    responses=problem_responses(401, 403, 422),
    summary="Exporta un libro de registro de un periodo (CSV o PDF)",
    description=_PEDIR,
)
async def pedir_exportacion(
    body: ExportacionCreate, request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """Records the export, starts it once committed and answers it (202, Location)."""
    try:
        libro.validate_rango(body.desde, body.hasta)
    except ValueError as exc:
        raise Unprocessable(
            "Datos no válidos: hasta", errors=[FieldError("hasta", str(exc))]
        ) from None
    entidad = await _entidad(runtime, principal.tenant)
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        exportacion = await service.crear_exportacion(uow, data=body)
    # Only now is the row committed, so the task (another transaction) finds it.
    service.start(
        runtime.db, tenant_id=principal.tenant, exportacion_id=exportacion.id, entidad=entidad
    )
    return JSONResponse(
        exportacion.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"{_BASE}/{exportacion.id}", "Retry-After": RETRY_AFTER_SECONDS},
    )


@router.get(
    "/libros/exportaciones/{exportacion_id}",
    response_model=ExportacionRead,
    responses=problem_responses(401, 403, 404),
    summary="Consulta una exportación del libro de registro y su progreso",
    description="Una exportación en curso que lleva 10 minutos sin avanzar (se detuvo el "
    "proceso que la hacía) se da por `fallida` al consultarla; pida otra.",
)
async def consultar_exportacion(
    exportacion_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> ExportacionRead:
    """One export of the caller's entity, with its progress."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_exportacion(
            session, tenant_id=principal.tenant, exportacion_id=exportacion_id
        )


@router.get(
    "/libros/exportaciones/{exportacion_id}/fichero",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {}, "application/pdf": {}},
            "description": "El fichero: CSV (UTF-8 con BOM, separado por `;`) o PDF",
        },
        **problem_responses(
            401, 403, 404, 409, overrides={409: "La exportación no ha terminado, o falló"}
        ),
    },
    summary="Descarga el fichero de una exportación terminada",
)
async def descargar_exportacion(
    exportacion_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> Response:
    """The finished export's file, as an attachment named after the book and period."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        exportacion, data = await service.consultar_fichero(
            session, tenant_id=principal.tenant, exportacion_id=exportacion_id
        )
    nombre = libro.nombre_fichero(
        TipoAsiento(exportacion.tipo), exportacion.formato, exportacion.desde, exportacion.hasta
    )
    return Response(
        data,
        media_type=exportacion.formato.media_type,
        headers={"Content-Disposition": f'attachment; filename="{nombre}"'},
    )
