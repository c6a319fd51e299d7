"""HTTP routes of the registro: thin, the rules live in domain.py and service.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

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
    PROBLEM_JSON,
    FieldError,
    Unprocessable,
    problem_response,
    problem_responses,
)
from services.common.idempotency import Created, run_idempotent
from services.common.reconciler import stalled_before
from services.registro import busqueda, service
from services.registro.anexos import Limites
from services.registro.busqueda import EstadoAsiento
from services.registro.domain import TipoAsiento, tenant_timezone, validate_dir3
from services.registro.justificante import EstadoJustificante
from services.registro.schemas import (
    AnulacionCreate,
    AsientoCreate,
    AsientoPage,
    AsientoRead,
    JustificanteEmitido,
    JustificantePendiente,
    JustificanteRead,
)

router = APIRouter(prefix="/api/v1/registro", tags=["registro"])

RegistroUser = Annotated[Principal, Depends(require_role("registro"))]
# A citizen (role ciudadano) presents asientos through the sede and reads their own.
RegistroOCiudadano = Annotated[Principal, Depends(require_any_role("registro", "ciudadano"))]


def _solo_suyos(principal: Principal) -> str | None:
    """Whose asientos the caller may see: all of the entity's for staff, else their own."""
    return None if principal.has_role("registro") else principal.sub


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
    responses={**_problems, **problem_responses(413)},
    summary="Registra un asiento",
)
async def registrar_asiento(
    body: AsientoCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroOCiudadano,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Registers an asiento and answers it with its number (201, Location).

    Staff (role registro) register presencial asientos; a citizen (role ciudadano)
    presents an electrónico one, as themselves or as a recorded representante.
    """
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            limites = Limites.de(runtime.settings)
            if principal.has_role("registro"):
                asiento = await service.register_asiento(uow, data=body, limites=limites)
            else:
                asiento = await service.register_asiento_ciudadano(
                    uow, data=body, nif=principal.nif, limites=limites
                )
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
    asiento_id: str, runtime: RuntimeDep, principal: RegistroOCiudadano
) -> AsientoRead:
    """One asiento of the caller's entity (a citizen: one they presented)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.get_asiento(
            session,
            tenant_id=principal.tenant,
            asiento_id=asiento_id,
            registrado_por=_solo_suyos(principal),
        )


@router.post(
    "/asientos/{asiento_id}/anular",
    response_model=AsientoRead,
    responses={
        **_problems,
        409: {"content": {PROBLEM_JSON: {}}, "description": "El asiento ya estaba anulado"},
    },
    summary="Anula un asiento",
    description="El asiento no se borra ni se modifica (Ley 39/2015): queda en el libro con "
    "su número, que no se vuelve a dar, y con estado `anulado`, quién lo anuló, cuándo y por "
    "qué. Anular un asiento ya anulado es un 409.",
)
async def anular_asiento(
    asiento_id: str,
    body: AnulacionCreate,
    request: Request,
    runtime: RuntimeDep,
    principal: RegistroUser,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Annuls an asiento of the caller's entity and answers it as it now stands."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def annul() -> Created:
            asiento = await service.annul_asiento(uow, asiento_id=asiento_id, data=body)
            return Created(200, asiento.model_dump(mode="json"), {})

        return await run_idempotent(
            uow,
            key=idempotency_key,
            operation=f"anular-asiento:{asiento_id}",
            payload=body,
            create=annul,
        )


def _parsed(field: str, value: str | None, parse: Callable[[str], Any]) -> Any:
    """A filter value parsed by ``parse``; its ValueError becomes a 422 naming the field."""
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise Unprocessable(
            f"Datos no válidos: {field}", errors=[FieldError(field, str(exc))]
        ) from None


_LISTADO = """Los asientos de la entidad que cumplen todos los filtros dados, del más
reciente al más antiguo (fecha_registro y, a igual fecha, id, descendentes).

Fechas: `desde` es inclusiva y `hasta` exclusiva (intervalo [desde, hasta)). Admiten una
fecha y hora RFC 3339 o una fecha AAAA-MM-DD, que significa la medianoche local de la
entidad (península o Canarias); una fecha y hora sin zona también se lee en hora local.

`interesado`: si es un identificador (NIF, NIE o CIF válido, o un código con cifras como un
pasaporte) se normaliza y se busca exactamente; si no, es parte de un nombre y apellidos, sin
distinguir mayúsculas ni acentos. `q` busca el texto en el resumen del mismo modo.

`oficina` filtra por la oficina de registro; `corrige=<id>` da los asientos que corrigen ese.
Un ciudadano (rol `ciudadano`) solo ve los asientos que él presentó.

Paginación: por número de página (`page`, `size`, con `total`) o por cursor: pase el
`next_cursor` de una respuesta en `cursor` para la página siguiente (con `cursor`, `page`
no se usa y `total` es null, para no contar en cada página; `next_cursor` es null en la
última)."""


@router.get(
    "/asientos",
    response_model=AsientoPage,
    responses=_problems,
    summary="Busca y lista los asientos",
    description=_LISTADO,
)
async def listar_asientos(
    runtime: RuntimeDep,
    principal: RegistroOCiudadano,
    tipo: TipoAsiento | None = None,
    numero: Annotated[str | None, Query(description="Número exacto, p. ej. E/2026/000001")] = None,
    desde: Annotated[str | None, Query(description="Desde (inclusive)")] = None,
    hasta: Annotated[str | None, Query(description="Hasta (exclusive)")] = None,
    interesado: Annotated[
        str | None,
        Query(min_length=3, max_length=100, description="Identificador o parte del nombre"),
    ] = None,
    q: Annotated[
        str | None, Query(min_length=3, max_length=240, description="Texto del resumen")
    ] = None,
    unidad: Annotated[str | None, Query(description="Código DIR3 de la unidad de destino")] = None,
    oficina: Annotated[
        str | None, Query(description="Código DIR3 de la oficina de registro")
    ] = None,
    corrige: Annotated[
        str | None, Query(description="Id de un asiento: los asientos que lo corrigen")
    ] = None,
    estado: EstadoAsiento | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AsientoPage:
    """The entity's asientos matching the filters, newest first, by page or by cursor."""
    zona = tenant_timezone(principal.tenant)
    filtros = busqueda.Filtros(
        numero=_parsed("numero", numero, busqueda.validate_numero),
        desde=_parsed("desde", desde, lambda v: busqueda.parse_instante(v, zona)),
        hasta=_parsed("hasta", hasta, lambda v: busqueda.parse_instante(v, zona)),
        interesado=_parsed("interesado", interesado, busqueda.clasificar_interesado),
        q=_parsed("q", q, busqueda.texto_buscado),
        unidad=_parsed("unidad", unidad, validate_dir3),
        oficina=_parsed("oficina", oficina, validate_dir3),
        tipo=tipo.value if tipo is not None else None,
        estado=estado,
        corrige=_parsed("corrige", corrige, lambda v: str(uuid.UUID(v))),
        registrado_por=_solo_suyos(principal),
    )
    if filtros.desde and filtros.hasta and filtros.desde >= filtros.hasta:
        raise Unprocessable(
            "Datos no válidos: hasta",
            errors=[FieldError("hasta", "debe ser posterior a desde")],
        )
    after = _parsed("cursor", cursor, busqueda.decode_cursor)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items, total, siguiente = await service.list_asientos(
            session,
            tenant_id=principal.tenant,
            filtros=filtros,
            size=size,
            page=1 if after is not None else page,
            cursor=after,
        )
    return AsientoPage(
        items=items,
        total=total,
        page=1 if after is not None else page,
        size=size,
        next_cursor=busqueda.encode_cursor(siguiente) if siguiente is not None else None,
    )


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
    """409 problem, plus what the client needs to decide on a retry."""
    return problem_response(
        409,
        f"No se pudo emitir el justificante: {justificante.motivo}",
        title="Justificante no emitido",
        slug="justificante-fallido",
        instance=request.url.path,
        extensions={
            "estado": justificante.estado.value,
            "motivo": justificante.motivo,
            "codigo": justificante.codigo,
            "intento": justificante.intento,
            "reintentar": f"{_justificante_url(justificante.asiento_id)}/reintentar",
        },
    )


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
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroOCiudadano
) -> JSONResponse:
    """Sends the caller to the issued justificante, or says it is still pending or failed.

    A citizen gets the justificante of an asiento they presented (anybody else's is a 404).
    """
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        justificante = await service.get_justificante(
            session,
            tenant_id=principal.tenant,
            asiento_id=asiento_id,
            registrado_por=_solo_suyos(principal),
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
    description="Pide de nuevo el justificante como una solicitud nueva al repositorio. 409 "
    "si ya está emitido, o en emisión desde hace menos de RECONCILER_STALLED_AFTER_SECONDS "
    "(una emisión más antigua se da por perdida y se pide de nuevo).",
)
async def reintentar_justificante(
    asiento_id: str, request: Request, runtime: RuntimeDep, principal: RegistroUser
) -> JSONResponse:
    """A failed or stalled justificante is asked for again, as a new request to the repositorio."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        await service.retry_justificante(
            uow, asiento_id=asiento_id, stalled_before=stalled_before(runtime.settings)
        )
    return _pendiente(asiento_id)
