"""HTTP routes of an asiento's time-stamp: its state, the token and the exact stamped bytes.

Thin: the rules live in ``service.py`` and ``domain.py``. With the token
(``.../sello-tiempo/token``), the bytes (``.../sello-tiempo/datos``) and the TSA's
root, anyone can verify when the asiento was registered without asking us again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.common.db import tenant_transaction
from services.common.deps import RuntimeDep, actor_of
from services.common.errors import problem_responses
from services.common.reconciler import stalled_before
from services.registro.api import RegistroUser, fallida, pendiente
from services.registro.sellos_tiempo import service
from services.registro.sellos_tiempo.domain import EstadoSello
from services.registro.sellos_tiempo.schemas import SelloTiempoRead

router = APIRouter(prefix="/api/v1/registro", tags=["registro"])

_problems = problem_responses(
    401,
    403,
    404,
    409,
    overrides={409: "El sello de tiempo falló, o no admite esa operación en su estado"},
)
_PENDIENTE = {
    "description": "Pendiente: el sello se está pidiendo; vuelva a consultar tras Retry-After "
    "segundos",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}


def _url(asiento_id: str) -> str:
    return f"/api/v1/registro/asientos/{asiento_id}/sello-tiempo"


def _pendiente(asiento_id: str, sello: SelloTiempoRead | None) -> JSONResponse:
    """202 with Retry-After: the state so far (nothing yet if the request is not recorded)."""
    body = sello or SelloTiempoRead(asiento_id=asiento_id, estado=EstadoSello.PENDIENTE)
    return pendiente(body, location=_url(asiento_id))


def _fallido(request: Request, sello: SelloTiempoRead) -> JSONResponse:
    """409 problem: there is no token, why, and where to ask again."""
    return fallida(
        request,
        sello,
        detail=f"El asiento no tiene sello de tiempo: {sello.motivo}",
        title="Sello de tiempo no emitido",
        slug="sello-tiempo-fallido",
        location=_url(sello.asiento_id),
    )


@router.get(
    "/asientos/{asiento_id}/sello-tiempo",
    response_model=SelloTiempoRead,
    responses={202: {"model": SelloTiempoRead, **_PENDIENTE}, **_problems},
    summary="Consulta el sello de tiempo de un asiento",
    description="El sello de tiempo (RFC 3161) de la autoridad de sellado de la plataforma "
    "sobre los datos canónicos del asiento tal como se registró. `desfase_ms` es lo que "
    "tardó el sello desde la fecha de registro. 200 con `estado` `sellado` o `fallido` "
    "(con `motivo` y `codigo`; puede pedirse de nuevo en `.../reintentar`); 202 con "
    "Retry-After mientras está pendiente.",
)
async def consultar_sello(
    asiento_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """The time-stamp's state; 202 while pending."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        sello = await service.consultar_sello(
            session, tenant_id=principal.tenant, asiento_id=asiento_id
        )
    if sello is None or sello.estado is EstadoSello.PENDIENTE:
        return _pendiente(asiento_id, sello)
    return JSONResponse(sello.model_dump(mode="json"), status_code=200)


@router.get(
    "/asientos/{asiento_id}/sello-tiempo/token",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "El TimeStampToken en DER (fichero .tst): "
            "`openssl ts -verify -data datos.json -in asiento.tst -token_in -CAfile ca.pem`",
        },
        202: _PENDIENTE,
        **_problems,
    },
    summary="Descarga el sello de tiempo (token RFC 3161) de un asiento",
)
async def descargar_token(
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> Response:
    """The DER token as a .tst file; 202 while pending, 409 when it failed."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        sello = await service.consultar_sello(
            session, tenant_id=principal.tenant, asiento_id=asiento_id
        )
        asiento, _, token = await service.datos_sellados(
            session, tenant_id=principal.tenant, asiento_id=asiento_id
        )
    if sello is None or sello.estado is EstadoSello.PENDIENTE:
        return _pendiente(asiento_id, sello)
    if sello.estado is EstadoSello.FALLIDO or token is None:
        return _fallido(request, sello)
    nombre = f"asiento-{asiento.numero.replace('/', '-')}.tst"
    return Response(
        token,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{nombre}"'},
    )


@router.get(
    "/asientos/{asiento_id}/sello-tiempo/datos",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}},
            "description": "Los bytes exactos que se sellan: el JSON canónico del asiento tal "
            "como se registró (claves ordenadas, sin espacios, UTF-8).",
        },
        202: _PENDIENTE,
        **_problems,
    },
    summary="Descarga los datos sellados de un asiento",
)
async def descargar_datos(
    asiento_id: str, runtime: RuntimeDep, principal: RegistroUser
) -> Response:
    """The kept bytes verbatim (never re-serialised); 202 until they have been kept."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        asiento, datos, _ = await service.datos_sellados(
            session, tenant_id=principal.tenant, asiento_id=asiento_id
        )
    if datos is None:
        return _pendiente(asiento_id, None)
    nombre = f"asiento-{asiento.numero.replace('/', '-')}.json"
    return Response(
        datos,
        media_type="application/json",
        headers={"Content-Disposition": f'inline; filename="{nombre}"'},
    )


@router.post(
    "/asientos/{asiento_id}/sello-tiempo/reintentar",
    status_code=202,
    response_model=SelloTiempoRead,
    responses=_problems,
    summary="Vuelve a pedir un sello de tiempo que falló",
    description="Pide de nuevo el sello sobre los mismos datos guardados. 409 si ya está "
    "sellado, o pendiente desde hace menos de RECONCILER_STALLED_AFTER_SECONDS (una "
    "petición más antigua se da por perdida y se pide de nuevo).",
)
async def reintentar_sello(
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """A failed or stalled time-stamp is asked for again, as a new request to the sellado."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        sello = await service.reintentar_sello(
            uow, asiento_id=asiento_id, stalled_before=stalled_before(runtime.settings)
        )
    return _pendiente(asiento_id, sello)
