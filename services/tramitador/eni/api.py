"""HTTP routes of the expediente electrónico: foliado, signed índice, ENI export and the
verification of an export. Thin: the rules are in domain.py, the work in service.py."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.cpu import CpuPool
from services.common.db import tenant_transaction
from services.common.deps import RuntimeDep, actor_of, require_role
from services.common.errors import (
    FieldError,
    Forbidden,
    PayloadTooLarge,
    Unprocessable,
    problem_responses,
)
from services.common.runtime import ServiceRuntime
from services.tramitador.eni import service
from services.tramitador.eni.exportacion import exportar_zip, nombre_zip
from services.tramitador.eni.repositorio_client import RepositorioClient, repositorio_de
from services.tramitador.eni.schemas import (
    ArchivoList,
    ArchivoRead,
    DocumentoIncorporar,
    FoliadoList,
    FoliadoRead,
    IndiceVersionList,
    IndiceVersionRead,
    Retirada,
    VerificacionRead,
)
from services.tramitador.eni.verificacion import verificar_zip

router = APIRouter(prefix="/api/v1/tramitador", tags=["tramitador", "expediente electrónico"])

TramitadorUser = Annotated[Principal, Depends(require_role("tramitador"))]
CiudadanoUser = Annotated[Principal, Depends(require_role("ciudadano"))]
Orden = Annotated[int, Path(ge=1, le=1_000_000)]
MAX_VERIFICACION_BYTES = 1024 * 1024 * 1024
_XML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}}
}
_ZIP: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}
}


def _token(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2]


@asynccontextmanager
async def _del_expediente(
    runtime: ServiceRuntime,
    principal: Principal,
    expediente_id: str,
    *,
    interesado: str | None = None,
) -> AsyncIterator[tuple[AsyncSession, dict[str, Any]]]:
    """A transaction of the caller's tenant in which the expediente is known to be theirs
    (and, for a citizen, one they are interesado of): anybody else's is a 404 first."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        expediente = await service.expediente_de(
            session, tenant_id=principal.tenant, expediente_id=expediente_id, interesado=interesado
        )
        yield session, expediente


@asynccontextmanager
async def _del_interesado(
    runtime: ServiceRuntime, principal: Principal, expediente_id: str
) -> AsyncIterator[AsyncSession]:
    """The same for a citizen: an expediente they are not interesado of is a 404 too."""
    async with _del_expediente(runtime, principal, expediente_id, interesado=_nif(principal)) as (
        session,
        _,
    ):
        yield session


def _indice_xml(fila: dict[str, Any]) -> Response:
    """A frozen índice as the ENI XML it is, with its digest as the ETag."""
    return Response(
        fila["xml"],
        media_type="application/xml",
        headers={"ETag": f'"{fila["sha256"]}"', "X-Indice-Version": str(fila["version"])},
    )


@router.get(
    "/expedientes/{expediente_id}/foliado",
    response_model=FoliadoList,
    responses=problem_responses(401, 403, 404),
    summary="Documentos del expediente, en orden (foliado)",
)
async def listar_foliado(
    expediente_id: str, runtime: RuntimeDep, principal: TramitadorUser
) -> FoliadoList:
    """Every document that entered the expediente, and every withdrawal, in order."""
    async with _del_expediente(runtime, principal, expediente_id) as (session, _):
        filas = await service.listar_foliado(session, expediente_id=expediente_id)
    return FoliadoList(items=[FoliadoRead.model_validate(f) for f in filas])


@router.post(
    "/expedientes/{expediente_id}/foliado",
    status_code=201,
    response_model=FoliadoRead,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
    summary="Incorpora al expediente un documento del repositorio",
)
async def incorporar_documento(
    expediente_id: str,
    body: DocumentoIncorporar,
    request: Request,
    runtime: RuntimeDep,
    principal: TramitadorUser,
) -> FoliadoRead:
    """Staff attach a stored document: it is foliado with the digest and ENI metadata the
    repositorio recorded for its current version (read as the caller, who needs the
    role ``documentos`` too)."""
    async with _del_expediente(runtime, principal, expediente_id):
        pass  # only the check: the repositorio is read outside the transaction
    version = await repositorio_de(request).version_actual(
        body.documento_id.lower(), _token(request)
    )
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        _, fila = await service.incorporar_adjunto(
            uow,
            expediente_id=expediente_id,
            documento_id=body.documento_id,
            titulo=body.titulo,
            version=version,
        )
    return FoliadoRead.model_validate(fila)


@router.post(
    "/expedientes/{expediente_id}/foliado/{orden}/retirada",
    status_code=201,
    response_model=FoliadoRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Retira un documento (queda en el índice: la retirada es una entrada nueva)",
)
async def retirar_documento(
    expediente_id: str,
    orden: Orden,
    body: Retirada,
    request: Request,
    runtime: RuntimeDep,
    principal: TramitadorUser,
) -> FoliadoRead:
    """A document is never removed from an expediente; its withdrawal is recorded."""
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        fila = await service.retirar_documento(
            uow, expediente_id=expediente_id, orden=orden, motivo=body.motivo
        )
    return FoliadoRead.model_validate(fila)


@router.post(
    "/expedientes/{expediente_id}/indice",
    status_code=202,
    response_model=IndiceVersionRead,
    responses=problem_responses(401, 403, 404, 409),
    summary="Congela y firma una versión del índice electrónico",
)
async def congelar_indice(
    expediente_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: TramitadorUser,
    remision: Annotated[
        bool,
        Query(
            description="Índice para remitir el expediente (a un órgano judicial u otra "
            "Administración): su Estado ENI es E03 (índice para remisión cerrado) mientras "
            "el expediente siga abierto; se exporta con `GET …/eni?version=N`."
        ),
    ] = False,
) -> IndiceVersionRead:
    """Freezes the índice as it stands and asks the sellado to sign it (XAdES-T); the
    version reads ``firmando`` until the sellado answers."""
    causa = service.CAUSA_REMISION if remision else "solicitado"
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        await service.comprobar_abierto(uow, expediente_id=expediente_id)
        fila = await service.congelar_indice(uow, expediente_id=expediente_id, causa=causa)
    if fila is None:
        raise service.SinDocumentos("El expediente aún no tiene documentos que indizar.")
    return IndiceVersionRead.model_validate({**fila, "created_at": fila.get("created_at")})


@router.get(
    "/expedientes/{expediente_id}/indices",
    response_model=IndiceVersionList,
    responses=problem_responses(401, 403, 404),
    summary="Versiones del índice electrónico",
)
async def listar_indices(
    expediente_id: str, runtime: RuntimeDep, principal: TramitadorUser
) -> IndiceVersionList:
    """Every frozen version of the índice and the state of its signature, newest first."""
    async with _del_expediente(runtime, principal, expediente_id) as (session, _):
        filas = await service.listar_indices(session, expediente_id=expediente_id)
    return IndiceVersionList(items=[IndiceVersionRead.model_validate(f) for f in filas])


@router.get(
    "/expedientes/{expediente_id}/indice",
    response_class=Response,
    responses={**_XML, **problem_responses(401, 403, 404, 409)},
    summary="Índice electrónico firmado (ENI, XAdES-T)",
)
async def consultar_indice(
    expediente_id: str,
    runtime: RuntimeDep,
    principal: TramitadorUser,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Response:
    """The latest signed índice (or ``version``): an ENI ``expediente`` XML with the
    índice, the expediente's metadata and the council's XAdES-T signature."""
    async with _del_expediente(runtime, principal, expediente_id) as (session, _):
        fila = await service.consultar_indice(session, expediente_id=expediente_id, version=version)
    return _indice_xml(fila)


@router.get(
    "/expedientes/{expediente_id}/eni",
    response_class=StreamingResponse,
    responses={**_ZIP, **problem_responses(401, 403, 404, 409, 503)},
    summary="Exporta el expediente electrónico (ZIP ENI)",
)
async def exportar_expediente(
    expediente_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: TramitadorUser,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> StreamingResponse:
    """The latest signed índice (or ``version``, e.g. the one frozen for a remisión) and
    every document it lists as a ``documentoEni``, in a ZIP written while it is sent
    (the caller needs the role ``documentos`` too)."""
    async with _del_expediente(runtime, principal, expediente_id) as (session, expediente):
        indice = await service.consultar_indice(
            session, expediente_id=expediente_id, version=version
        )
        filas = await service.documentos_del_indice(
            session, expediente_id=expediente_id, hasta_orden=indice["hasta_orden"]
        )
        identificador = await service.identificador_de(session, principal.tenant, expediente)
    return _zip_response(
        repositorio_de(request), _token(request), indice["xml"], filas, identificador
    )


def _zip_response(
    repositorio: RepositorioClient,
    token: str,
    xml: bytes,
    filas: list[dict[str, Any]],
    identificador: str,
) -> StreamingResponse:
    async def cuerpo() -> AsyncIterator[bytes]:
        async with repositorio.client() as client:

            def contenido(fila: dict[str, Any]) -> AsyncIterator[bytes]:
                return repositorio.contenido(client, fila["documento_id"], fila["version"], token)

            async for parte in exportar_zip(xml, filas, contenido):
                if parte:
                    yield parte

    return StreamingResponse(
        cuerpo(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{nombre_zip(identificador)}"'},
    )


_ZIP_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
}


@router.post(
    "/verificaciones",
    response_model=VerificacionRead,
    openapi_extra={"requestBody": _ZIP_BODY},
    responses=problem_responses(401, 403, 413, 422),
    summary="Verifica un expediente exportado (ZIP ENI)",
)
async def verificar_exportacion(
    request: Request, runtime: RuntimeDep, principal: TramitadorUser
) -> VerificacionRead:
    """Checks the índice's signature and time-stamp, whether their signers chain to the
    platform's trust anchor (``TRAMITADOR_TRUST_ANCHOR_PEM``), and every document's
    digest; a document that does not match is named. Runs in a worker process."""
    cpu: CpuPool = request.app.state.cpu
    fd, path = tempfile.mkstemp(suffix=".zip")
    try:
        total = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                total += len(chunk)
                if total > MAX_VERIFICACION_BYTES:
                    raise PayloadTooLarge(
                        f"El ZIP supera {MAX_VERIFICACION_BYTES} bytes.",
                    )
                out.write(chunk)
        if total == 0:
            raise Unprocessable(
                "Falta el ZIP.", errors=[FieldError("body", "el cuerpo es el ZIP exportado")]
            )
        ancla = runtime.settings.tramitador_trust_anchor_pem
        resultado = await cpu.run(
            principal.tenant, verificar_zip, path, str(ancla) if ancla else None
        )
    finally:
        os.unlink(path)
    if resultado.get("motivo") and not resultado.get("firma"):
        raise Unprocessable(
            resultado["motivo"], errors=[FieldError("body", str(resultado["motivo"]))]
        )
    return VerificacionRead.de(resultado)


@router.get(
    "/archivo",
    response_model=ArchivoList,
    responses=problem_responses(401, 403, 422),
    summary="Expedientes del archivo",
)
async def listar_archivo(
    runtime: RuntimeDep,
    principal: TramitadorUser,
    antes_de: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ArchivoList:
    """Expedientes transferred to the archive (read-only), most recent first."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        filas = await service.listar_archivo(
            session, tenant_id=principal.tenant, antes_de=antes_de, limit=limit
        )
    siguiente = filas[-1]["archivado_at"] if len(filas) == limit else None
    return ArchivoList(
        items=[ArchivoRead.model_validate(f) for f in filas], next_antes_de=siguiente
    )


@router.get(
    "/archivo/{expediente_id}",
    response_model=ArchivoRead,
    responses=problem_responses(401, 403, 404),
    summary="Un expediente del archivo",
)
async def consultar_archivo(
    expediente_id: str, runtime: RuntimeDep, principal: TramitadorUser
) -> ArchivoRead:
    """An archived expediente's entry: when, by whom, and how long it is kept; its índice
    and export are at …/expedientes/{id}/indice and …/eni."""
    async with tenant_transaction(runtime.db, principal.tenant) as session:
        fila = await service.consultar_archivo(
            session, tenant_id=principal.tenant, expediente_id=expediente_id
        )
    return ArchivoRead.model_validate(fila)


def _nif(principal: Principal) -> str:
    if not principal.nif:
        raise Forbidden("El token del ciudadano no lleva NIF.")
    return principal.nif.upper()


@router.get(
    "/mis-expedientes/{expediente_id}/indice",
    response_class=Response,
    responses={**_XML, **problem_responses(401, 403, 404, 409)},
    summary="Copia del índice electrónico firmado (ciudadano)",
)
async def mi_indice(expediente_id: str, runtime: RuntimeDep, principal: CiudadanoUser) -> Response:
    """The interesado's copy of the latest signed índice of their expediente."""
    async with _del_interesado(runtime, principal, expediente_id) as session:
        fila = await service.consultar_indice(session, expediente_id=expediente_id)
    return _indice_xml(fila)


@router.get(
    "/mis-expedientes/{expediente_id}/documentos",
    response_model=FoliadoList,
    responses=problem_responses(401, 403, 404),
    summary="Documentos notificados de uno de mis expedientes (ciudadano)",
)
async def mis_documentos(
    expediente_id: str, runtime: RuntimeDep, principal: CiudadanoUser
) -> FoliadoList:
    """The documents of the expediente that were notified to its interesados."""
    async with _del_interesado(runtime, principal, expediente_id) as session:
        filas = await service.documentos_del_indice(
            session, expediente_id=expediente_id, hasta_orden=2**31 - 1, notificados=True
        )
    return FoliadoList(items=[FoliadoRead.model_validate(f) for f in filas])


@router.get(
    "/mis-expedientes/{expediente_id}/documentos/{orden}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "El documento notificado"},
        **problem_responses(401, 403, 404, 503),
    },
    summary="Descarga un documento notificado (ciudadano)",
)
async def mi_documento(
    expediente_id: str,
    orden: Orden,
    request: Request,
    runtime: RuntimeDep,
    principal: CiudadanoUser,
) -> StreamingResponse:
    """The interesado's copy of a notified document: the issued PDF, read from its public
    verification address (its CSV), streamed."""
    async with _del_interesado(runtime, principal, expediente_id) as session:
        fila = await service.documento_notificado(session, expediente_id=expediente_id, orden=orden)
    csv = (fila["metadatos"] or {}).get("csv")
    if not csv:
        raise service.SinDocumentos("El documento no tiene CSV con el que descargarlo.")
    repositorio = repositorio_de(request)
    client = repositorio.client()
    chunks = repositorio.publico(client, csv)
    # The first chunk is read before answering, so a refusal is a problem, not a cut body.
    try:
        primero = await anext(chunks)
    except StopAsyncIteration:
        primero = b""
    except BaseException:
        await client.aclose()
        raise

    async def cuerpo() -> AsyncIterator[bytes]:
        try:
            yield primero
            async for chunk in chunks:
                yield chunk
        finally:
            await client.aclose()

    nombre = re.sub(r"[^A-Za-z0-9._-]", "_", fila["nombre"] or "") or "documento.pdf"
    return StreamingResponse(
        cuerpo(),
        media_type=fila["mime"] or "application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{nombre}"'},
    )
