"""HTTP route for sealing: the internal route the gateway's authorised callers use.

``POST /api/v1/sellado/sellos`` (role ``sellado``) takes a PDF as multipart part
``file`` and answers the sealed PDF (PAdES-B-T, the caller's tenant's seal and
our TSA's time-stamp). Services prefer the bus command
``sellado.documento.sellar.v1``; this route is for tools and staff frontends.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from services.common.auth import Principal
from services.common.deps import RuntimeDep, actor_of, require_role
from services.common.errors import (
    FieldError,
    PayloadTooLarge,
    Unprocessable,
    problem_responses,
)
from services.sellado import service
from services.sellado.domain import Rechazo, looks_like_pdf
from services.sellado.ejemplos import ejemplo_multipart
from services.sellado.pades import VisibleAppearance
from services.sellado.trust import TrustServices

router = APIRouter(prefix="/api/v1/sellado", tags=["sellado"])

SelladoUser = Annotated[Principal, Depends(require_role("sellado"))]
_CHUNK = 64 * 1024


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """Reads an upload in chunks and stops as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"El fichero supera el máximo de {limit} bytes.",
                errors=[FieldError("file", f"máximo {limit} bytes")],
            )
        parts.append(chunk)
    return b"".join(parts)


@router.post(
    "/sellos",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "El PDF sellado (PAdES-B-T)"},
        **problem_responses(
            401,
            403,
            413,
            422,
            overrides={403: "Sin el rol sellado", 422: "No es un PDF que se pueda sellar"},
        ),
    },
    summary="Sella un PDF con el sello de la entidad",
    openapi_extra={"requestBody": ejemplo_multipart(motivo="Sello de órgano")},
)
async def sellar(
    request: Request,
    runtime: RuntimeDep,
    principal: SelladoUser,
    file: Annotated[UploadFile, File(description="El PDF que se sella")],
    motivo: Annotated[str | None, Form(max_length=200)] = None,
    visible: Annotated[bool, Form(description="Añadir un sello visible")] = False,
) -> Response:
    """Seals the uploaded PDF with the caller's entity's seal and a time-stamp."""
    trust: TrustServices = request.app.state.sellado
    pdf = await _read_limited(file, runtime.settings.sellado_max_pdf_bytes)
    if not looks_like_pdf(pdf):
        raise Unprocessable("El fichero no es un PDF.", errors=[FieldError("file", "no es un PDF")])
    assert runtime.tenants is not None
    tenant = await runtime.tenants.get(principal.tenant)
    assert tenant is not None  # the token check already refused unknown tenants
    async with runtime.unit_of_work(principal.tenant, actor_of(request, principal)) as uow:
        try:
            sealed = await service.sellar_documento(
                uow,
                trust=trust,
                tenant=tenant,
                pdf=pdf,
                nombre_fichero=file.filename or "documento.pdf",
                motivo=motivo,
                appearance=VisibleAppearance() if visible else None,
            )
        except Rechazo as refusal:
            raise Unprocessable(
                refusal.motivo, errors=[FieldError("file", refusal.codigo)]
            ) from refusal
    digest = base64.b64encode(bytes.fromhex(sealed.sha256)).decode("ascii")
    name = (file.filename or "documento.pdf").rsplit(".", 1)[0]
    return Response(
        sealed.pdf,
        media_type="application/pdf",
        headers={
            "Repr-Digest": f"sha-256=:{digest}:",
            "X-Sello-Tiempo": sealed.sello_tiempo.isoformat(),
            "Content-Disposition": f'attachment; filename="{_ascii(name)}-sellado.pdf"',
        },
    )


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() or c in "-_" else "_" for c in name)[:100]
