"""HTTP face of the time-stamping authority (RFC 3161 §3.4) and of the trust anchors.

Routes (no prefix; the app decides where to mount them):

* ``POST /tsa``: body ``application/timestamp-query`` (a DER TimeStampReq, at most
  64 KiB); answers ``200 application/timestamp-reply`` for every request it could
  read, rejections included, because RFC 3161 carries the refusal inside the reply.
  A wrong media type is a 415, a bigger body a 413 (problem+json both).
* ``GET /tsa/chain.pem``: the TSA certificate followed by its issuers up to the root.
* ``GET /pki/ca.pem``: the trust anchor a verifier needs (development PKI).

Attribute contract: the routes read ``request.app.state.sellado``, which the
composition root sets (see ``services.sellado.app.create_app``) to an object with

* ``tsa``: a :class:`~services.sellado.tsa.TimeStampAuthority`; ``POST /tsa`` calls
  its ``respond`` and ``GET /tsa/chain.pem`` serves ``tsa.keypair.chain_pem()``;
* ``pki``: an object with a ``root`` property (an ``x509.Certificate``), such as
  :class:`~services.sellado.pki.DevPki`, or ``None`` when the anchor is published
  elsewhere (a qualified provider's root), in which case ``/pki/ca.pem`` is a 404.

:class:`SelladoState` is such an object. While nothing is attached the routes
answer 503, so a half-wired app fails visibly instead of with a 500.
"""

from __future__ import annotations

from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.common.errors import problem_response, problem_responses
from services.sellado.tsa import TimeStampAuthority

__all__ = [
    "MAX_REQUEST_BYTES",
    "PEM_CHAIN",
    "SelladoState",
    "TIMESTAMP_QUERY",
    "TIMESTAMP_REPLY",
    "TrustAnchor",
    "router",
]

TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"
PEM_CHAIN = "application/pem-certificate-chain"
# A TimeStampReq is a few hundred octets; the limit only stops abuse.
MAX_REQUEST_BYTES = 64 * 1024

router = APIRouter(tags=["sellado de tiempo"])


class TrustAnchor(Protocol):
    """What ``/pki/ca.pem`` needs of ``state.pki``."""

    @property
    def root(self) -> x509.Certificate:
        """The root certificate relying parties trust."""
        ...


class SelladoState:
    """The object ``app.state.sellado`` holds (see the module docstring)."""

    def __init__(self, tsa: TimeStampAuthority, pki: TrustAnchor | None) -> None:
        self.tsa = tsa
        self.pki = pki


def _state(request: Request) -> Any:
    """``app.state.sellado`` (duck-typed, see the module docstring), or None if unset."""
    return getattr(request.app.state, "sellado", None)


def _unavailable(request: Request) -> JSONResponse:
    return problem_response(
        503,
        "La autoridad de sellado de tiempo no está configurada en este servicio.",
        slug="no-disponible",
        instance=request.url.path,
    )


_PROBLEM_TEXTS = {
    404: "No se publica aquí",
    413: "Petición mayor de 64 KiB",
    415: "Tipo de contenido distinto de application/timestamp-query",
    503: "Sin autoridad de sellado configurada",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*codes, overrides=_PROBLEM_TEXTS)


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` (not read further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@router.post(
    "/tsa",
    summary="Sella en el tiempo un resumen (RFC 3161)",
    response_class=Response,
    responses={
        200: {
            "content": {TIMESTAMP_REPLY: {}},
            "description": "TimeStampResp en DER: sello concedido o rechazo motivado",
        },
        **_problems(413, 415, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                TIMESTAMP_QUERY: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def time_stamp(request: Request) -> Response:
    """Answers a TimeStampReq with a TimeStampResp (RFC 3161 over HTTP, §3.4)."""
    state = _state(request)
    if state is None:
        return _unavailable(request)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != TIMESTAMP_QUERY:
        return problem_response(
            415,
            f"El cuerpo debe ser {TIMESTAMP_QUERY} (un TimeStampReq en DER).",
            slug="tipo-no-admitido",
            instance=request.url.path,
        )
    body = await _body_within(request, MAX_REQUEST_BYTES)
    if body is None:
        return problem_response(
            413,
            f"La petición supera {MAX_REQUEST_BYTES // 1024} KiB.",
            slug="peticion-demasiado-grande",
            instance=request.url.path,
        )
    reply = await state.tsa.respond(body)
    # Each reply is unique (serial, time, nonce): nothing in between may cache it.
    return Response(reply, media_type=TIMESTAMP_REPLY, headers={"Cache-Control": "no-store"})


@router.get(
    "/tsa/chain.pem",
    summary="Certificado de la autoridad de sellado y sus emisores (PEM)",
    response_class=Response,
    responses={200: {"content": {PEM_CHAIN: {}}}, **_problems(503)},
)
async def tsa_chain(request: Request) -> Response:
    """The TSA certificate and its issuers, for verifiers that were not sent them."""
    state = _state(request)
    if state is None:
        return _unavailable(request)
    return Response(state.tsa.keypair.chain_pem(), media_type=PEM_CHAIN)


@router.get(
    "/pki/ca.pem",
    summary="Certificado raíz de confianza (PEM)",
    response_class=Response,
    responses={200: {"content": {PEM_CHAIN: {}}}, **_problems(404, 503)},
)
async def trust_root(request: Request) -> Response:
    """The root certificate to trust for tokens and seals made by this deployment."""
    state = _state(request)
    if state is None:
        return _unavailable(request)
    if state.pki is None:
        return problem_response(
            404,
            "Esta instalación no publica su raíz: la publica su prestador de confianza.",
            slug="no-encontrado",
            instance=request.url.path,
        )
    root: x509.Certificate = state.pki.root
    return Response(root.public_bytes(serialization.Encoding.PEM), media_type=PEM_CHAIN)
