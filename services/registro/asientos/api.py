"""HTTP routes of asientos: thin, the rules live in domain.py and service.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.common.db import tenant_transaction
from services.common.deps import (
    IdempotencyKeyDep,
    RuntimeDep,
    actor_of,
)
from services.common.errors import (
    PROBLEM_JSON,
    FieldError,
    Unprocessable,
    problem_responses,
)
from services.common.idempotency import Created, run_idempotent
from services.common.timezones import tenant_timezone
from services.registro.anexos.domain import Limites
from services.registro.api import PROBLEMAS, RegistroOCiudadano, RegistroUser, solo_suyos
from services.registro.asientos import domain, service
from services.registro.asientos.domain import EstadoAsiento
from services.registro.asientos.schemas import (
    AnulacionCreate,
    AsientoCreate,
    AsientoPage,
    AsientoRead,
)
from services.registro.domain import TipoAsiento, validate_dir3
from services.registro.oficinas import service as oficinas
from services.registro.sede import service as sede

router = APIRouter(prefix="/api/v1/registro", tags=["registro"])


@router.post(
    "/asientos",
    status_code=201,
    response_model=AsientoRead,
    responses={**PROBLEMAS, **problem_responses(413)},
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
    actor = actor_of(request, principal)
    if principal.has_role("registro") and service.admite_registro_directo(body):
        # The common case, and a council's peak: one asiento with nothing else to do.
        # With an Idempotency-Key the key is claimed before the numbering lock is taken,
        # in the order the ORM path takes them, so the two paths never wait on each
        # other in opposite orders; without one, the lock rides with BEGIN.
        primero = "" if idempotency_key is not None else oficinas.BLOQUEO_NUMERACION
        async with runtime.lean_unit_of_work(principal.tenant, actor, first=primero) as lean:

            async def create_directo() -> Created:
                if not primero:
                    await lean.transaction.execute_constant(oficinas.BLOQUEO_NUMERACION)
                return _registrado(await service.registrar_asiento_directo(lean, data=body))

            return await run_idempotent(
                lean,
                key=idempotency_key,
                operation="registrar-asiento",
                payload=body,
                create=create_directo,
            )
    async with runtime.unit_of_work(principal.tenant, actor) as uow:

        async def create() -> Created:
            limites = Limites.de(runtime.settings)
            if principal.has_role("registro"):
                asiento = await service.registrar_asiento(uow, data=body, limites=limites)
            else:
                asiento = await sede.registrar_asiento_ciudadano(
                    uow, data=body, nif=principal.nif, limites=limites
                )
            return _registrado(asiento)

        return await run_idempotent(
            uow, key=idempotency_key, operation="registrar-asiento", payload=body, create=create
        )


def _registrado(asiento: AsientoRead) -> Created:
    """The 201 of a registered asiento: the asiento, and where to read it again."""
    location = f"/api/v1/registro/asientos/{asiento.id}"
    return Created(201, asiento.model_dump(mode="json"), {"Location": location})


@router.get(
    "/asientos/{asiento_id}",
    response_model=AsientoRead,
    responses=PROBLEMAS,
    summary="Consulta un asiento",
)
async def consultar_asiento(
    asiento_id: str, runtime: RuntimeDep, principal: RegistroOCiudadano
) -> AsientoRead:
    """One asiento of the caller's entity (a citizen: one they presented)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_asiento(
            session,
            tenant_id=principal.tenant,
            asiento_id=asiento_id,
            registrado_por=solo_suyos(principal),
        )


@router.post(
    "/asientos/{asiento_id}/anular",
    response_model=AsientoRead,
    responses={
        **PROBLEMAS,
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
            asiento = await service.anular_asiento(uow, asiento_id=asiento_id, data=body)
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
    responses=PROBLEMAS,
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
    filtros = domain.Filtros(
        numero=_parsed("numero", numero, domain.validate_numero),
        desde=_parsed("desde", desde, lambda v: domain.parse_instante(v, zona)),
        hasta=_parsed("hasta", hasta, lambda v: domain.parse_instante(v, zona)),
        interesado=_parsed("interesado", interesado, domain.clasificar_interesado),
        q=_parsed("q", q, domain.texto_buscado),
        unidad=_parsed("unidad", unidad, validate_dir3),
        oficina=_parsed("oficina", oficina, validate_dir3),
        tipo=tipo.value if tipo is not None else None,
        estado=estado,
        corrige=_parsed("corrige", corrige, lambda v: str(uuid.UUID(v))),
        registrado_por=solo_suyos(principal),
    )
    if filtros.desde and filtros.hasta and filtros.desde >= filtros.hasta:
        raise Unprocessable(
            "Datos no válidos: hasta",
            errors=[FieldError("hasta", "debe ser posterior a desde")],
        )
    after = _parsed("cursor", cursor, domain.decode_cursor)
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        items, total, siguiente = await service.listar_asientos(
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
        next_cursor=domain.encode_cursor(siguiente) if siguiente is not None else None,
    )
