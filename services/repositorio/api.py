"""HTTP routes of the repositorio: thin, the rules live in domain.py and service.py.

Uploads are ``multipart/form-data`` read from the raw request stream (see
upload.py), never parsed by the framework into memory or temporary files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from services.common.auth import Principal
from services.common.db import tenant_transaction
from services.common.deps import IdempotencyKeyDep, RuntimeDep, actor_of, require_role
from services.common.errors import problem_responses
from services.common.idempotency import Created, run_idempotent
from services.common.nti import MIME_SERVIDOS
from services.repositorio import service
from services.repositorio.download import content_response
from services.repositorio.schemas import (
    DocumentoRead,
    MetadatosCreate,
    VersionList,
    VersionRead,
)
from services.repositorio.storage import BlobStore
from services.repositorio.upload import Subida, receive_upload

router = APIRouter(prefix="/api/v1/documentos", tags=["documentos"])

DocumentosUser = Annotated[Principal, Depends(require_role("documentos"))]


async def get_blob_store(request: Request) -> BlobStore:
    """The blob store the app was built with."""
    store: BlobStore = request.app.state.blob_store
    return store


BlobStoreDep = Annotated[BlobStore, Depends(get_blob_store)]
VersionNumber = Annotated[int, Path(ge=1, description="Número de versión (1, 2, ...)")]


_PROBLEM_TEXTS = {
    401: "Sin token válido",
    403: "Sin el rol documentos",
    404: "No existe (o es de otra entidad)",
    413: "Fichero o metadatos demasiado grandes",
    415: "No es multipart/form-data",
    416: "Rango no satisfacible",
    422: "Datos no válidos",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*codes, overrides=_PROBLEM_TEXTS)


def _multipart_body(*, metadatos_required: bool) -> dict[str, Any]:
    required = ["metadatos", "file"] if metadatos_required else ["file"]
    # The enums it refers to are components already (the responses use them too).
    metadatos = MetadatosCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    metadatos.pop("$defs", None)
    metadatos["description"] = (
        "Metadatos ENI en JSON; deben ir antes que file."
        if metadatos_required
        else "Metadatos ENI en JSON (si faltan, se conservan los de la versión anterior); "
        "deben ir antes que file."
    )
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": required,
                        "properties": {
                            "metadatos": metadatos,
                            "file": {"type": "string", "format": "binary"},
                        },
                    },
                    # The file's part says its type (or its name's extension does).
                    "encoding": {
                        "metadatos": {"contentType": "application/json"},
                        "file": {"contentType": "application/pdf"},
                    },
                }
            },
        }
    }


async def _receive(
    request: Request,
    runtime: RuntimeDep,
    store: BlobStore,
    principal: Principal,
    *,
    metadatos_required: bool,
    check: Callable[[MetadatosCreate], None] | None = None,
) -> Subida:
    return await receive_upload(
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        body=request.stream(),
        store=store,
        tenant=principal.tenant,
        max_bytes=runtime.settings.repositorio_max_bytes,
        metadatos_required=metadatos_required,
        check=check,
    )


@router.post(
    "",
    status_code=201,
    response_model=DocumentoRead,
    responses=_problems(401, 403, 413, 415, 422),
    openapi_extra=_multipart_body(metadatos_required=True),
    summary="Almacena un documento electrónico",
)
async def almacenar_documento(
    request: Request,
    runtime: RuntimeDep,
    store: BlobStoreDep,
    principal: DocumentosUser,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Stores a document (metadatos ENI + file) and answers it with its first version."""
    subida = await _receive(request, runtime, store, principal, metadatos_required=True)
    metadatos = subida.metadatos
    assert metadatos is not None
    payload = {"metadatos": metadatos, "contenido": asdict(subida.contenido)}
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            documento = await service.guardar_documento(
                uow, metadatos=metadatos, contenido=subida.contenido
            )
            location = f"/api/v1/documentos/{documento.id}"
            return Created(201, documento.model_dump(mode="json"), {"Location": location})

        return await run_idempotent(
            uow,
            key=idempotency_key,
            operation="almacenar-documento",
            payload=payload,
            create=create,
        )


@router.post(
    "/{documento_id}/versiones",
    status_code=201,
    response_model=DocumentoRead,
    responses=_problems(401, 403, 404, 413, 415, 422),
    openapi_extra=_multipart_body(metadatos_required=False),
    summary="Añade una versión a un documento",
)
async def nueva_version(
    documento_id: str,
    request: Request,
    runtime: RuntimeDep,
    store: BlobStoreDep,
    principal: DocumentosUser,
    idempotency_key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Adds a version (the old ones stay) and answers the documento with it as current."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        # Refused before reading the upload: nothing is stored for a documento that is not
        # there, nor for metadata that could not belong to it.
        current = await service.consultar_documento(
            session, tenant_id=principal.tenant, documento_id=documento_id
        )
    subida = await _receive(
        request,
        runtime,
        store,
        principal,
        metadatos_required=False,
        check=lambda metadatos: service.comprobar_mismo_organo(current, metadatos),
    )
    payload = {
        "documento_id": documento_id,
        "metadatos": subida.metadatos,
        "contenido": asdict(subida.contenido),
    }
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:

        async def create() -> Created:
            documento = await service.agregar_version(
                uow,
                documento_id=documento_id,
                metadatos=subida.metadatos,
                contenido=subida.contenido,
            )
            location = f"/api/v1/documentos/{documento_id}/versiones/{documento.versiones}"
            return Created(201, documento.model_dump(mode="json"), {"Location": location})

        return await run_idempotent(
            uow, key=idempotency_key, operation="nueva-version", payload=payload, create=create
        )


@router.get(
    "/{documento_id}",
    response_model=DocumentoRead,
    responses=_problems(401, 403, 404),
    summary="Consulta un documento y su versión actual",
)
async def consultar_documento(
    documento_id: str, runtime: RuntimeDep, principal: DocumentosUser
) -> DocumentoRead:
    """One documento of the caller's entity, with its current version's metadata."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_documento(
            session, tenant_id=principal.tenant, documento_id=documento_id
        )


@router.get(
    "/{documento_id}/versiones",
    response_model=VersionList,
    responses=_problems(401, 403, 404),
    summary="Historial de versiones de un documento",
)
async def listar_versiones(
    documento_id: str, runtime: RuntimeDep, principal: DocumentosUser
) -> VersionList:
    """Every version of a documento, oldest first."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.listar_versiones(
            session, tenant_id=principal.tenant, documento_id=documento_id
        )


@router.get(
    "/{documento_id}/versiones/{version}",
    response_model=VersionRead,
    responses=_problems(401, 403, 404),
    summary="Consulta una versión de un documento",
)
async def consultar_version(
    documento_id: str, version: VersionNumber, runtime: RuntimeDep, principal: DocumentosUser
) -> VersionRead:
    """One version's metadata."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        return await service.consultar_version(
            session, tenant_id=principal.tenant, documento_id=documento_id, version=version
        )


_CONTENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            mime: {"schema": {"type": "string", "format": "binary"}} for mime in MIME_SERVIDOS
        },
        "description": "El contenido, con el tipo MIME de su formato",
    },
    206: {"description": "Parte del contenido (Range)"},
    304: {"description": "No ha cambiado (If-None-Match)"},
    **_problems(401, 403, 404, 416),
}


@router.get(
    "/{documento_id}/contenido",
    response_class=Response,
    responses=_CONTENT_RESPONSES,
    summary="Descarga el contenido de la versión actual",
)
async def descargar_contenido(
    documento_id: str,
    runtime: RuntimeDep,
    store: BlobStoreDep,
    principal: DocumentosUser,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
) -> Response:
    """The current version's bytes, streamed (ETag, If-None-Match, Range)."""
    return await _download(
        documento_id, None, runtime, store, principal, range_header, if_none_match, if_range
    )


@router.get(
    "/{documento_id}/versiones/{version}/contenido",
    response_class=Response,
    responses=_CONTENT_RESPONSES,
    summary="Descarga el contenido de una versión",
)
async def descargar_version(
    documento_id: str,
    version: VersionNumber,
    runtime: RuntimeDep,
    store: BlobStoreDep,
    principal: DocumentosUser,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
) -> Response:
    """One version's bytes, streamed (ETag, If-None-Match, Range)."""
    return await _download(
        documento_id, version, runtime, store, principal, range_header, if_none_match, if_range
    )


async def _download(
    documento_id: str,
    version: int | None,
    runtime: RuntimeDep,
    store: BlobStore,
    principal: Principal,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
) -> Response:
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        found = await service.consultar_version(
            session, tenant_id=principal.tenant, documento_id=documento_id, version=version
        )
    # Streamed after the transaction: a slow reader holds no database connection.
    return await content_response(
        store,
        principal.tenant,
        found,
        range_header=range_header,
        if_none_match=if_none_match,
        if_range=if_range,
    )
