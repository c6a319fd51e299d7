"""HTTP routes of issuing: emitir a version, follow its emisión, and the public download by CSV.

``POST .../emitir`` opens the emisión and waits a little for the saga (CSV,
stamp, seal) to finish: most answers are a 201 with the CSV; a slow one is a
202 pointing at the emisión to poll. The public download is anonymous: the CSV
printed on the document is the only credential, as the law intends.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import IdempotencyKeyDep, RuntimeDep, actor_of, require_role
from services.common.errors import (
    FieldError,
    NotFound,
    ProblemError,
    Unprocessable,
    problem_responses,
)
from services.common.idempotency import Created, run_idempotent
from services.repositorio import service
from services.repositorio.download import content_response
from services.repositorio.emision import service as emision
from services.repositorio.emision.domain import PATRON_CSV, EstadoEmision, normalizar_csv
from services.repositorio.emision.schemas import DocumentoEmitido, EmisionRead, EmitirRequest
from services.repositorio.storage import BlobStore

__all__ = ["public_router", "router"]

router = APIRouter(prefix="/api/v1/documentos", tags=["emisiones"])
public_router = APIRouter(prefix="/api/v1/documentos", tags=["verificación"])

DocumentosUser = Annotated[Principal, Depends(require_role("documentos"))]
# What a client waiting on a 202 should wait before asking again.
_RETRY_AFTER_SECONDS = 1


async def _blob_store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.blob_store
    return store


BlobStoreDep = Annotated[BlobStore, Depends(_blob_store)]


_PROBLEM_TEXTS = {
    400: "Código seguro de verificación mal formado",
    401: "Sin token válido",
    403: "Sin el rol documentos",
    404: "No existe (o es de otra entidad)",
    416: "Rango no satisfacible",
    422: "No se puede emitir, o la emisión ha fallado",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*codes, overrides=_PROBLEM_TEXTS)


def _emision_location(documento_id: str, emision_id: str) -> str:
    return f"/api/v1/documentos/{documento_id}/emisiones/{emision_id}"


@router.post(
    "/{documento_id}/emitir",
    status_code=201,
    response_model=DocumentoEmitido,
    responses={
        202: {"model": EmisionRead, "description": "Emisión en curso: consulte Location"},
        **_problems(401, 403, 404, 422),
    },
    summary="Emite una versión con CSV y sello de órgano",
)
async def emitir_documento(
    documento_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: DocumentosUser,
    body: Annotated[EmitirRequest | None, Body()] = None,
    idempotency_key: IdempotencyKeyDep = None,
) -> Response:
    """Issues a PDF version: CSV and its QR on every page, the council's seal, a new version.

    Answers 201 with the CSV and the new version when the emisión finishes within
    the configured wait, 202 with ``Location`` and ``Retry-After`` while it runs,
    and 422 when it failed (nothing is issued then).
    """
    requested = body.version if body is not None else None
    payload = {"documento_id": documento_id, "version": requested}
    settings = runtime.settings
    max_bytes = min(settings.sellado_max_pdf_bytes, settings.repositorio_max_bytes)
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            opened = await emision.emitir_version(
                uow, documento_id=documento_id, version=requested, max_bytes=max_bytes
            )
            location = _emision_location(documento_id, opened.id)
            return Created(202, opened.model_dump(mode="json"), {"Location": location})

        first = await run_idempotent(
            uow, key=idempotency_key, operation="emitir-documento", payload=payload, create=create
        )
    # A replayed key names the emisión it opened the first time; its state is read afresh.
    emision_id = str(json.loads(bytes(first.body))["id"])
    current = await emision.esperar_emision(
        runtime.db,
        tenant_id=principal.tenant,
        documento_id=documento_id,
        emision_id=emision_id,
        seconds=settings.emision_wait_seconds,
    )
    replayed = {k: v for k, v in first.headers.items() if k.lower() == "idempotent-replayed"}
    return await _answer(runtime, principal.tenant, current, extra_headers=replayed)


async def _answer(
    runtime: RuntimeDep, tenant: str, current: EmisionRead, *, extra_headers: dict[str, str]
) -> Response:
    if current.estado == EstadoEmision.FALLIDA:
        raise Unprocessable(
            f"No se ha podido emitir el documento: {current.motivo}",
            errors=[FieldError("emision", f"{current.codigo}: {current.motivo}")],
            headers={
                "Link": f'<{_emision_location(current.documento_id, current.id)}>; rel="related"'
            },
        )
    if current.estado != EstadoEmision.EMITIDA:
        return JSONResponse(
            current.model_dump(mode="json"),
            status_code=202,
            headers={
                "Location": _emision_location(current.documento_id, current.id),
                "Retry-After": str(_RETRY_AFTER_SECONDS),
                **extra_headers,
            },
        )
    assert current.csv and current.url_verificacion and current.version_emitida
    async with tenant_transaction(runtime.db, tenant) as session:
        version = await service.consultar_version(
            session,
            tenant_id=tenant,
            documento_id=current.documento_id,
            version=current.version_emitida,
        )
    issued = DocumentoEmitido(
        csv=current.csv,
        url_verificacion=current.url_verificacion,
        emision_id=current.id,
        documento_id=current.documento_id,
        version=version,
    )
    location = f"/api/v1/documentos/{current.documento_id}/versiones/{version.version}"
    return JSONResponse(
        issued.model_dump(mode="json"),
        status_code=201,
        headers={"Location": location, **extra_headers},
    )


@router.get(
    "/{documento_id}/emisiones/{emision_id}",
    response_model=EmisionRead,
    responses=_problems(401, 403, 404),
    summary="Consulta una emisión",
)
async def consultar_emision(
    documento_id: str, emision_id: str, runtime: RuntimeDep, principal: DocumentosUser
) -> EmisionRead:
    """Where an emisión stands: pendiente, sellando, emitida (with the CSV) or fallida (why)."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await emision.consultar_emision(
            session, tenant_id=principal.tenant, documento_id=documento_id, emision_id=emision_id
        )


@public_router.get(
    "/verificar/{csv}/documento",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "El documento emitido"},
        206: {"description": "Parte del documento (Range)"},
        304: {"description": "No ha cambiado (If-None-Match)"},
        **_problems(400, 404, 416),
    },
    summary="Descarga pública del documento emitido con un CSV",
)
async def documento_por_csv(
    csv: Annotated[str, Path(json_schema_extra={"pattern": PATRON_CSV})],
    runtime: RuntimeDep,
    store: BlobStoreDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
) -> Response:
    """The sealed PDF a CSV names, byte for byte, for anyone holding the code (no login)."""
    try:
        codigo = normalizar_csv(csv)
    except ValueError as exc:
        raise ProblemError(
            "El código seguro de verificación no tiene un formato válido.",
            errors=[FieldError("csv", str(exc))],
        ) from None
    found = await emision.buscar_emitido(runtime.db, codigo)
    if found is None:
        raise NotFound(f"No hay ningún documento emitido con el código {codigo}.")
    async with tenant_transaction(runtime.db, found.tenant_id) as session:
        version = await service.consultar_version(
            session,
            tenant_id=found.tenant_id,
            documento_id=found.documento_id,
            version=found.version,
        )
    return await content_response(
        store,
        found.tenant_id,
        version,
        range_header=range_header,
        if_none_match=if_none_match,
        if_range=if_range,
        inline=True,
    )
