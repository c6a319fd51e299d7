"""HTTP routes of pagos: liquidaciones, autoliquidaciones, conceptos, configuration, card payment.

Staff hold the role ``pagos``; a citizen (role ``ciudadano``) reaches only the
liquidaciones in the name of the NIF their token asserts, and anything else is
a 404, as is another tenant's liquidación. The Redsys notification is public
(the gateway forwards ``/pagos/redsys/notificacion`` anonymously, rate-limited):
its signature is its credential.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import (
    IdempotencyKeyDep,
    RuntimeDep,
    actor_of,
    require_any_role,
    require_role,
)
from services.common.errors import (
    FieldError,
    Forbidden,
    PayloadTooLarge,
    Unprocessable,
    problem_responses,
)
from services.common.idempotency import Created, run_idempotent
from services.common.openapi_links import enlaces_a
from services.common.uow import Actor
from services.pagos import cobros, conciliacion, cuaderno60, documentos, service, tarjeta
from services.pagos.cartas import Tipo
from services.pagos.domain import tipo_de_identificador
from services.pagos.schemas import (
    AnulacionCreate,
    AutoliquidacionCreate,
    AutoliquidacionRead,
    ConceptoCreate,
    ConceptoRead,
    ConciliacionRead,
    ConfiguracionRead,
    ConfiguracionUpdate,
    DevolucionCreate,
    DocumentoRead,
    InformeCobros,
    LiquidacionCreate,
    LiquidacionPage,
    LiquidacionRead,
    Obligado,
    PagoTarjetaRead,
)
from services.pagos.vencimientos import Vencedor

__all__ = ["router"]

PREFIX = "/api/v1/pagos"
router = APIRouter(prefix=PREFIX, tags=["pagos"])

PagosUser = Annotated[Principal, Depends(require_role("pagos"))]
AdminUser = Annotated[Principal, Depends(require_role("admin"))]
PagosOCiudadano = Annotated[Principal, Depends(require_any_role("pagos", "ciudadano"))]
EstadoFiltro = Literal["pendiente", "pagada", "vencida", "anulada", "devuelta"]

_problems = problem_responses(401, 403, 404, 409, 422)


def _obligado_de(principal: Principal) -> str | None:
    """Whose liquidaciones the caller may reach: all for staff, else the token's NIF."""
    if principal.has_role("pagos"):
        return None
    if not principal.nif:
        raise Forbidden("El token del ciudadano no indica su NIF (claim 'nif').")
    return principal.nif


@router.post(
    "/liquidaciones",
    status_code=201,
    response_model=LiquidacionRead,
    responses=_problems,
    summary="Emite una liquidación con su referencia de Cuaderno 60",
    openapi_extra=enlaces_a(
        "liquidacion_id",
        "$response.body#/id",
        consultar="GET /api/v1/pagos/liquidaciones/{liquidacion_id}",
        carta_de_pago="GET /api/v1/pagos/liquidaciones/{liquidacion_id}/carta-de-pago",
        pago_tarjeta="POST /api/v1/pagos/liquidaciones/{liquidacion_id}/pago-tarjeta",
        anular="POST /api/v1/pagos/liquidaciones/{liquidacion_id}/anular",
    ),
)
async def emitir_liquidacion(
    body: LiquidacionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: PagosUser,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Staff issue a liquidación; the answer carries the carta de pago's data and links."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            liquidacion = await service.emitir_liquidacion(uow, datos=body, origen="gestion")
            return Created(
                201, liquidacion.model_dump(mode="json"), {"Location": liquidacion.enlaces["self"]}
            )

        return await run_idempotent(
            uow, key=idempotency_key, operation="emitir-liquidacion", payload=body, create=create
        )


@router.get(
    "/liquidaciones",
    response_model=LiquidacionPage,
    responses=problem_responses(401, 403, 422),
    summary="Lista las liquidaciones (un ciudadano, las suyas)",
)
async def listar_liquidaciones(
    runtime: RuntimeDep,
    principal: PagosOCiudadano,
    estado: EstadoFiltro | None = None,
    expediente_id: uuid.UUID | None = None,
    limite: int = Query(default=50, ge=1, le=200),
    desplazamiento: int = Query(default=0, ge=0),
) -> LiquidacionPage:
    """The entity's liquidaciones, newest first."""
    obligado = _obligado_de(principal)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.listar_liquidaciones(
            session,
            tenant_id=principal.tenant,
            obligado=obligado,
            estado=estado,
            expediente_id=None if expediente_id is None else str(expediente_id),
            limite=limite,
            desplazamiento=desplazamiento,
        )


@router.get(
    "/liquidaciones/{liquidacion_id}",
    response_model=LiquidacionRead,
    responses=problem_responses(401, 403, 404),
    summary="Consulta una liquidación",
)
async def consultar_liquidacion(
    liquidacion_id: str, runtime: RuntimeDep, principal: PagosOCiudadano
) -> LiquidacionRead:
    """One liquidación of the caller's entity (a citizen: one in their name)."""
    obligado = _obligado_de(principal)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_liquidacion(
            session, tenant_id=principal.tenant, liquidacion_id=liquidacion_id, obligado=obligado
        )


async def _documento(
    runtime: RuntimeDep, principal: Principal, liquidacion_id: str, tipo: str
) -> JSONResponse:
    obligado = _obligado_de(principal)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        vista = await documentos.consultar_documento(
            session,
            tenant_id=principal.tenant,
            liquidacion_id=liquidacion_id,
            tipo=tipo,
            obligado=obligado,
            base_url=runtime.settings.public_base_url,
        )
    cuerpo = DocumentoRead.model_validate(vista).model_dump(mode="json", exclude_none=True)
    if vista["estado"] == "pendiente":
        return JSONResponse(cuerpo, status_code=202, headers={"Retry-After": "1"})
    return JSONResponse(cuerpo)


_DOCUMENTO_RESPUESTAS = {
    202: {"model": DocumentoRead, "description": "Pedido al repositorio, aún sin emitir"},
    **problem_responses(401, 403, 404),
}


@router.get(
    "/liquidaciones/{liquidacion_id}/carta-de-pago",
    response_model=DocumentoRead,
    responses=_DOCUMENTO_RESPUESTAS,
    summary="La carta de pago emitida (CSV y sello), o 202 mientras se emite",
)
async def carta_de_pago(
    liquidacion_id: str, runtime: RuntimeDep, principal: PagosOCiudadano
) -> JSONResponse:
    """The carta de pago's CSV and download address once the repositorio issued it."""
    return await _documento(runtime, principal, liquidacion_id, Tipo.CARTA_DE_PAGO)


@router.get(
    "/liquidaciones/{liquidacion_id}/justificante-pago",
    response_model=DocumentoRead,
    responses=_DOCUMENTO_RESPUESTAS,
    summary="El justificante de pago emitido (CSV y sello), o 202 mientras se emite",
)
async def justificante_pago(
    liquidacion_id: str, runtime: RuntimeDep, principal: PagosOCiudadano
) -> JSONResponse:
    """The receipt of a paid liquidación, once the repositorio issued it."""
    return await _documento(runtime, principal, liquidacion_id, Tipo.JUSTIFICANTE_PAGO)


@router.post(
    "/liquidaciones/{liquidacion_id}/anular",
    response_model=LiquidacionRead,
    responses=_problems,
    summary="Anula una liquidación no pagada",
)
async def anular_liquidacion(
    liquidacion_id: str,
    body: AnulacionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: PagosUser,
) -> LiquidacionRead:
    """Annuls a pendiente or vencida liquidación."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.anular_liquidacion(
            uow, liquidacion_id=liquidacion_id, motivo=body.motivo
        )


@router.post(
    "/liquidaciones/{liquidacion_id}/devolucion",
    response_model=LiquidacionRead,
    responses=_problems,
    summary="Registra la devolución de una liquidación pagada",
)
async def devolver_liquidacion(
    liquidacion_id: str,
    body: DevolucionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: PagosUser,
) -> LiquidacionRead:
    """The paid amount went back to the obligado: the liquidación is ``devuelta``."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.devolver_liquidacion(
            uow, liquidacion_id=liquidacion_id, motivo=body.motivo
        )


@router.post(
    "/vencimientos",
    responses=problem_responses(401, 403),
    summary="Marca vencidas las liquidaciones pendientes fuera de plazo",
)
async def marcar_vencidas(
    request: Request, runtime: RuntimeDep, principal: PagosUser
) -> dict[str, int]:
    """By hand (the scheduler does it every hour): the council's pendientes past their
    vencimiento, on its local day, become ``vencida``, each with its event."""
    vencedor: Vencedor = request.app.state.vencedor
    n = await vencedor.vencer_entidad(principal.tenant, actor=actor_of(request, principal))
    return {"vencidas": n}


# A bank's daily file is a few hundred kilobytes; this is far above any real one.
MAX_FICHERO_COBROS = 5 * 1024 * 1024


async def _leer_limitado(request: Request, limite: int) -> bytes:
    """The request body, refusing it (413) as soon as it passes ``limite`` bytes."""
    declarado = request.headers.get("content-length")
    if declarado and declarado.isdigit() and int(declarado) > limite:
        raise PayloadTooLarge(f"El fichero supera {limite} bytes.")
    partes: list[bytes] = []
    leidos = 0
    async for parte in request.stream():
        leidos += len(parte)
        if leidos > limite:
            raise PayloadTooLarge(f"El fichero supera {limite} bytes.")
        partes.append(parte)
    return b"".join(partes)


@router.post(
    "/cobros",
    response_model=InformeCobros,
    responses=problem_responses(401, 403, 409, 413, 422),
    summary="Importa el fichero de cobros de Cuaderno 60 de un banco",
    openapi_extra={
        "requestBody": {
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    # A file of a day without cobros: its header and its totals (emisora 030140).
                    "example": f"{'0103014020261202':<120}\r\n{'03030140' + '0' * 22:<120}\r\n",
                }
            },
            "required": True,
        }
    },
)
async def importar_cobros(
    request: Request, runtime: RuntimeDep, principal: PagosUser
) -> InformeCobros:
    """Marks paid, once per NRC, the liquidaciones the bank collected; reports every line."""
    crudo = await _leer_limitado(request, MAX_FICHERO_COBROS)
    # Bank files are ISO-8859-1; parsing a large one is CPU work, off the event loop.
    try:
        fichero = await asyncio.to_thread(cuaderno60.leer_fichero_cobros, crudo.decode("latin-1"))
    except cuaderno60.FicheroNoValido as exc:
        raise Unprocessable(
            f"Fichero de cobros no válido: {exc}", errors=[FieldError("body", str(exc))]
        ) from exc
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        informe = await cobros.importar_cobros(uow, fichero=fichero)
    return InformeCobros.model_validate(informe.__dict__)


@router.get(
    "/conciliacion",
    response_model=ConciliacionRead,
    responses=problem_responses(401, 403, 422),
    summary="Conciliación: emitido, cobrado por canal y pendiente en un periodo",
)
async def conciliar(
    runtime: RuntimeDep, principal: PagosUser, desde: date, hasta: date
) -> ConciliacionRead:
    """The treasury's reconciliation report for ``desde``..``hasta`` (both included)."""
    if hasta < desde:
        raise Unprocessable(
            "El periodo acaba antes de empezar.", errors=[FieldError("hasta", "anterior a desde")]
        )
    if (hasta - desde).days >= conciliacion.MAX_DIAS:
        raise Unprocessable(
            f"El periodo no puede pasar de {conciliacion.MAX_DIAS} días.",
            errors=[FieldError("hasta", "periodo demasiado largo")],
        )
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await conciliacion.conciliar(
            session, tenant_id=principal.tenant, desde=desde, hasta=hasta
        )


# --- ordenanza conceptos and autoliquidaciones ---------------------------------------------


@router.put(
    "/conceptos/{codigo}",
    response_model=ConceptoRead,
    responses=problem_responses(401, 403, 422),
    summary="Define un concepto autoliquidable de la ordenanza fiscal",
)
async def definir_concepto(
    body: ConceptoCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: PagosUser,
    codigo: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,20}$")],
) -> ConceptoRead:
    """Creates or replaces a concepto and its rule (fija, por_unidad, porcentaje)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.definir_concepto(uow, codigo=codigo, datos=body)


@router.get(
    "/conceptos",
    response_model=list[ConceptoRead],
    responses=problem_responses(401, 403),
    summary="Conceptos autoliquidables de la entidad",
)
async def listar_conceptos(runtime: RuntimeDep, principal: PagosOCiudadano) -> list[ConceptoRead]:
    """What a citizen may self-assess, with its rules."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.listar_conceptos(session, tenant_id=principal.tenant)


@router.post(
    "/autoliquidaciones",
    status_code=201,
    response_model=AutoliquidacionRead,
    responses=_problems,
    summary="Calcula una tasa según la ordenanza y la liquida a nombre del obligado",
)
async def autoliquidar(
    body: AutoliquidacionCreate, request: Request, runtime: RuntimeDep, principal: PagosOCiudadano
) -> AutoliquidacionRead:
    """A citizen self-assesses in their own name; staff may name the obligado."""
    nif = _obligado_de(principal)
    if nif is not None:
        try:
            obligado = Obligado(
                tipo_identificador=tipo_de_identificador(nif),
                identificador=nif,
                nombre=principal.name,
            )
        except ValidationError as exc:
            raise Forbidden(f"El NIF del token no es válido: {exc.errors()[0]['msg']}") from exc
    elif body.obligado is not None:
        obligado = body.obligado
    else:
        raise Forbidden("Indique el obligado de la autoliquidación.")
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.autoliquidar(
            uow,
            concepto=body.concepto,
            declarados=body.declarados,
            obligado=obligado,
            expediente_id=body.expediente_id,
        )


# --- configuration and card payment ---------------------------------------------------


@router.put(
    "/configuracion",
    response_model=ConfiguracionRead,
    responses=problem_responses(401, 403, 422),
    summary="Configura Redsys y la emisora de Cuaderno 60 (la clave no se devuelve nunca)",
)
async def configurar(
    body: ConfiguracionUpdate, request: Request, runtime: RuntimeDep, principal: AdminUser
) -> ConfiguracionRead:
    """The tenant's payment channels (role admin)."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await service.configurar(uow, datos=body)


@router.get(
    "/configuracion",
    response_model=ConfiguracionRead,
    responses=problem_responses(401, 403),
    summary="La configuración de pagos, sin la clave",
)
async def consultar_configuracion(runtime: RuntimeDep, principal: AdminUser) -> ConfiguracionRead:
    """What is configured; of the key, only whether there is one."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_configuracion(session, tenant_id=principal.tenant)


@router.post(
    "/liquidaciones/{liquidacion_id}/pago-tarjeta",
    status_code=201,
    response_model=PagoTarjetaRead,
    response_model_by_alias=True,
    responses=_problems,
    summary="Firma el formulario de pago con tarjeta en Redsys",
)
async def pago_tarjeta(
    liquidacion_id: str, request: Request, runtime: RuntimeDep, principal: PagosOCiudadano
) -> PagoTarjetaRead:
    """The form (URL and three fields) the browser posts to Redsys: one attempt per call."""
    obligado = _obligado_de(principal)
    base = runtime.settings.public_base_url.rstrip("/")
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        return await tarjeta.iniciar_pago_tarjeta(
            uow,
            liquidacion_id=liquidacion_id,
            obligado=obligado,
            url_notificacion=f"{base}/pagos/redsys/notificacion",
            url_vuelta=f"{base}/pagos/redsys/vuelta",
        )


@router.post(
    "/redsys/notificacion",
    responses=problem_responses(400, 404, 422, 429),
    summary="Notificación en línea de Redsys (pública, firmada HMAC_SHA256_V1)",
)
async def notificacion_redsys(
    runtime: RuntimeDep,
    request: Request,
    # An empty form field is a missing one to FastAPI (422): the document says so.
    ds_signature_version: Annotated[
        str, Form(alias="Ds_SignatureVersion", min_length=1, max_length=20)
    ],
    ds_merchant_parameters: Annotated[
        str, Form(alias="Ds_MerchantParameters", min_length=1, max_length=8192)
    ],
    ds_signature: Annotated[str, Form(alias="Ds_Signature", min_length=1, max_length=100)],
) -> dict[str, str]:
    """Redsys tells the outcome of an attempt; applied once, whatever is replayed."""
    orden, tenant = await tarjeta.tenant_de_notificacion(runtime.db, ds_merchant_parameters)
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    actor = Actor(
        sub="sistema:redsys",
        name="Redsys",
        client_ip=forwarded or (request.client.host if request.client else None),
        request_id=request.headers.get("x-request-id"),
    )
    async with runtime.unit_of_work(tenant, actor) as uow:
        resultado = await tarjeta.procesar_notificacion(
            uow,
            orden=orden,
            version=ds_signature_version,
            parametros=ds_merchant_parameters,
            firma=ds_signature,
        )
    return {"orden": resultado.orden, "resultado": resultado.resultado}


_ESTADOS_VUELTA = {
    "pagada": "Pago recibido: la liquidación está pagada.",
    "devuelta": "La liquidación se pagó y se ha devuelto el importe.",
}


@router.get(
    "/redsys/vuelta",
    response_class=HTMLResponse,
    responses=problem_responses(400, 404, 422, 429),
    summary="Página a la que Redsys devuelve al pagador (pública, firmada)",
)
async def vuelta_redsys(
    runtime: RuntimeDep,
    ds_signature_version: Annotated[str, Query(alias="Ds_SignatureVersion", max_length=20)],
    ds_merchant_parameters: Annotated[str, Query(alias="Ds_MerchantParameters", max_length=8192)],
    ds_signature: Annotated[str, Query(alias="Ds_Signature", max_length=100)],
) -> HTMLResponse:
    """Shows the payer the liquidación as stored (paid or not) and, once issued, the receipt."""
    datos = await tarjeta.vuelta(
        runtime.db,
        version=ds_signature_version,
        parametros=ds_merchant_parameters,
        firma=ds_signature,
        base_url=runtime.settings.public_base_url,
    )
    mensaje = _ESTADOS_VUELTA.get(
        datos.estado, f"El pago no se ha completado: la liquidación está {datos.estado}."
    )
    enlace = (
        f'<p><a id="justificante" href="{html.escape(datos.justificante_url)}">'
        "Descargar el justificante de pago</a></p>"
        if datos.justificante_url
        else (
            '<p id="sin-justificante">El justificante de pago se está emitiendo; '
            "recargue la página en unos segundos.</p>"
            if datos.estado == "pagada"
            else ""
        )
    )
    cuerpo = (
        '<!doctype html><html lang="es"><head><meta charset="utf-8">'
        f"<title>Liquidación {html.escape(datos.numero)}</title></head><body>"
        f"<h1>Liquidación {html.escape(datos.numero)}</h1>"
        f"<p>{html.escape(datos.concepto)} · {html.escape(datos.importe)} €</p>"
        f'<p id="estado" data-estado="{html.escape(datos.estado)}">{html.escape(mensaje)}</p>'
        f"{enlace}</body></html>"
    )
    return HTMLResponse(
        cuerpo,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
        },
    )
