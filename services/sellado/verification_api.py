"""HTTP route for verifying the seals and signatures of a PDF.

``POST /api/v1/sellado/verificaciones`` takes a PDF as multipart part ``file``
and answers ``{"firmas": [...]}``, one report per embedded signature (see
:class:`~services.sellado.verification.SignatureReport`). Staff who receive or
handle documents may verify (roles ``registro``, ``tramitador``, ``documentos``,
``sellado``; ``admin``); a citizen checks a document through the public CSV page
instead. Verifying is expensive (the whole PDF is parsed and every signature
validated), so it runs in the app's worker processes (``app.state.cpu``, a
:class:`~services.common.cpu.CpuPool` bounding each tenant's concurrent jobs), and
each caller has ``SELLADO_VERIFICACIONES_PER_MINUTE`` of them (429 beyond).

Contract with the composition root, ``request.app.state.sellado``:

* ``pki.root`` (required): the ``cryptography`` root certificate our seals and
  time-stamps chain to; it is the only trust anchor of the verification;
* ``max_verify_bytes`` (optional ``int``): the largest PDF accepted, default
  :data:`DEFAULT_MAX_VERIFY_BYTES`; larger uploads get a 413 problem.

and ``request.app.state.verificaciones``, the per-caller :class:`MissLimiter` window.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from services.common.auth import Principal
from services.common.cpu import CpuPool
from services.common.deps import require_any_role
from services.common.errors import (
    FieldError,
    PayloadTooLarge,
    ProblemError,
    Unprocessable,
    problem_responses,
)
from services.common.misses import MissLimiter
from services.sellado.ejemplos import EJEMPLO_PDF
from services.sellado.pades import InvalidPdf
from services.sellado.verification import SignatureReport, verify_pdf_der_roots

__all__ = ["DEFAULT_MAX_VERIFY_BYTES", "VerificacionRead", "router"]

router = APIRouter(prefix="/api/v1/sellado", tags=["sellado"])

DEFAULT_MAX_VERIFY_BYTES = 20 * 1024 * 1024
# Room for the multipart boundaries and part headers around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024
_CHUNK = 64 * 1024


class VerificacionRead(BaseModel):
    """The answer: one report per signature or document time-stamp, in signing order."""

    firmas: list[SignatureReport]


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"El fichero supera el máximo de {limit} bytes.",
        errors=[FieldError("file", f"máximo {limit} bytes")],
    )


def _capped(
    receive: Callable[[], Awaitable[Message]], limit: int
) -> Callable[[], Awaitable[Message]]:
    """A receive channel that stops the upload once it passes ``limit`` bytes.

    Starlette's multipart parser spools a file part whole before the route sees
    it, so without this an oversize upload would be written to disk first.
    """
    seen = 0

    async def receive_capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit + _MULTIPART_OVERHEAD:
                raise _too_large(limit)
        return message

    return receive_capped


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


async def _uploaded_pdf(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        # Refused before a byte of the body is read.
        raise _too_large(limit)
    capped = Request(request.scope, _capped(request.receive, limit))
    try:
        async with capped.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Unprocessable(
                    "Falta el PDF en la parte multipart 'file'.",
                    errors=[FieldError("file", "falta el fichero")],
                )
            return await _read_limited(upload, limit)
    except StarletteHTTPException as exc:
        # A malformed multipart body: starlette says 400, but for the caller it is
        # the same mistake as a missing part.
        raise Unprocessable(
            "El cuerpo no es un multipart/form-data válido.",
            errors=[FieldError("file", "multipart no válido")],
        ) from exc


_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "El PDF que se verifica",
                    }
                },
            },
            "example": {"file": EJEMPLO_PDF},
        }
    },
}


VERIFIER_ROLES = ("registro", "tramitador", "documentos", "sellado")


class TooManyVerifications(ProblemError):
    """429: the caller spent its verifications of this minute."""

    status = 429
    slug = "demasiadas-peticiones"


def _spend(request: Request, principal: Principal) -> None:
    limiter: MissLimiter | None = getattr(request.app.state, "verificaciones", None)
    if limiter is None:
        return
    caller = f"{principal.tenant}:{principal.sub}"
    wait = limiter.retry_after(caller)
    if wait is not None:
        raise TooManyVerifications(
            f"Demasiadas verificaciones: vuelva a intentarlo en {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    limiter.record_miss(caller)


@router.post(
    "/verificaciones",
    response_model=VerificacionRead,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=problem_responses(
        401,
        403,
        413,
        422,
        429,
        overrides={
            403: "Sin un rol de personal que maneje documentos",
            422: "No es un PDF legible",
        },
    ),
    summary="Verifica los sellos y firmas de un PDF",
)
async def verificar(
    request: Request,
    principal: Annotated[Principal, Depends(require_any_role(*VERIFIER_ROLES))],
) -> VerificacionRead:
    """Checks every signature in the uploaded PDF against our trust root, off the loop."""
    _spend(request, principal)
    sellado = request.app.state.sellado
    cpu: CpuPool = request.app.state.cpu
    limit = int(getattr(sellado, "max_verify_bytes", DEFAULT_MAX_VERIFY_BYTES))
    pdf = await _uploaded_pdf(request, limit)
    root = sellado.pki.root.public_bytes(Encoding.DER)
    try:
        firmas = await cpu.run(principal.tenant, verify_pdf_der_roots, pdf, [root])
    except InvalidPdf as exc:
        raise Unprocessable(str(exc), errors=[FieldError("file", str(exc))]) from exc
    return VerificacionRead(firmas=firmas)
