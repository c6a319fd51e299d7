"""The streaming reverse proxy from the gateway to a service, and upstream probes.

Bodies are relayed chunk by chunk in both directions, so an 8 MiB upload or a
large document download never sits whole in the gateway's memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import quote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.limits import UpstreamUnavailableError
from services.common.errors import PayloadTooLarge, ProblemError

__all__ = [
    "HOP_BY_HOP",
    "BadGatewayError",
    "GatewayTimeoutError",
    "forward",
    "probe_readiness",
    "upstream_request_headers",
    "upstream_response_headers",
    "upstream_target",
    "upstream_url",
]

_log = logging.getLogger("consistorio.gateway.proxy")

# RFC 9110 §7.6.1: meaningful for one connection only, never relayed.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# The gateway is the edge: what a client claims about forwarding or its request
# ID is replaced by what the gateway knows. Host comes from the upstream URL, and
# Expect was already answered to the client by the server in front of us.
_SET_BY_GATEWAY = frozenset(
    {
        "host",
        "expect",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-request-id",
    }
)
# The ASGI server in front of the gateway adds its own; relaying them would duplicate.
_SET_BY_SERVER = frozenset({"date", "server"})


class BadGatewayError(ProblemError):
    """The service could not be reached or broke the connection."""

    status = 502
    slug = "servicio-no-disponible"


class GatewayTimeoutError(ProblemError):
    """The service did not answer within the proxy timeout."""

    status = 504
    slug = "servicio-sin-respuesta"


def _connection_listed(headers: Iterable[tuple[str, str]]) -> set[str]:
    # Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
    listed: set[str] = set()
    for name, value in headers:
        if name == "connection":
            listed.update(token.strip().lower() for token in value.split(",") if token.strip())
    return listed


def upstream_request_headers(request: Request, request_id: str) -> list[tuple[str, str]]:
    """Headers sent to the service: the client's, minus hop-by-hop, plus forwarding ones."""
    raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw]
    drop = HOP_BY_HOP | _SET_BY_GATEWAY | _connection_listed(raw)
    headers = [(name, value) for name, value in raw if name not in drop]
    if not any(name == "accept-encoding" for name, _ in headers):
        # Otherwise httpx asks for gzip on the client's behalf and the raw relay
        # would hand a compressed body to a client that never accepted one.
        headers.append(("accept-encoding", "identity"))
    if request.client is not None:
        headers.append(("x-forwarded-for", request.client.host))
    headers.append(("x-forwarded-proto", request.url.scheme))
    host = request.headers.get("host")
    if host:
        headers.append(("x-forwarded-host", host))
    headers.append(("x-request-id", request_id))
    return headers


def upstream_response_headers(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """Headers relayed to the client: the service's, minus hop-by-hop and server-set ones."""
    raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in headers.raw]
    drop = HOP_BY_HOP | _SET_BY_SERVER | _connection_listed(raw)
    return [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in raw if name not in drop
    ]


def upstream_target(scope: Scope, service: str, path: str) -> tuple[str, bytes]:
    """The service's raw path (still percent-encoded) and query for this request."""
    prefix = f"/api/v1/{service}"
    raw = scope.get("raw_path")
    # The raw path keeps %2F and friends exactly as the client sent them; it is
    # only usable if it is the plain prefix (not mounted, not encoded differently).
    raw_path = raw.decode("latin-1") if isinstance(raw, bytes) else ""
    if not (raw_path == prefix or raw_path.startswith(prefix + "/")):
        # A collection's own URL (/api/v1/documentos) has no trailing slash.
        raw_path = prefix + ("/" + quote(path, safe="/:@!$&'()*+,;=~") if path else "")
    return raw_path, scope.get("query_string", b"")


def upstream_url(base_url: str, scope: Scope, service: str, path: str) -> str:
    """The service URL for this request: same path (still percent-encoded) and query."""
    raw_path, query = upstream_target(scope, service, path)
    url = base_url.rstrip("/") + raw_path
    return f"{url}?{query.decode('latin-1')}" if query else url


class _UpstreamStreamingResponse(StreamingResponse):
    """A streamed service response that always releases its pooled connection."""

    def __init__(self, upstream: httpx.Response, service: str) -> None:
        super().__init__(
            _relay(upstream, service),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
        self.raw_headers = upstream_response_headers(upstream.headers)
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The background close runs only after a complete send; a client that
        # disconnects mid-download must not leak the upstream connection.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._upstream.aclose()


async def _relay(upstream: httpx.Response, service: str) -> AsyncIterator[bytes]:
    # Raw bytes keep Content-Encoding and Content-Length consistent with the body.
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        # Headers are gone already: aborting the connection is the only honest
        # signal, a silently truncated body would look complete.
        _log.warning("upstream %s broke the response stream: %r", service, exc)
        raise


async def forward(
    client: httpx.AsyncClient,
    request: Request,
    *,
    service: str,
    path: str,
    base_url: str,
    request_id: str,
    max_body_bytes: int | None = None,
) -> Response:
    """Relays ``request`` to ``service`` and streams its answer back.

    A body over ``max_body_bytes`` is refused here with 413 (at once when its
    Content-Length says so, else when the count passes it) and never reaches the service.
    """
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    content = None
    if has_body:
        declared = request.headers.get("content-length", "")
        if max_body_bytes is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise _too_large(max_body_bytes)
        content = _counted(request.stream(), max_body_bytes)
    # As bytes: header values may hold any Latin-1 octet, which httpx's str headers
    # would refuse to encode (a 500 for a client's odd header).
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in upstream_request_headers(request, request_id)
    ]
    upstream_request = client.build_request(
        request.method,
        upstream_url(base_url, request.scope, service, path),
        headers=headers,
        content=content,
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # Nothing reached the service: a 503 the client may retry (gateway/limits.py).
        _log.debug("upstream %s not reachable now: %r", service, exc)
        raise UpstreamUnavailableError(service) from exc
    except httpx.TimeoutException as exc:
        _log.warning("upstream %s timed out: %r", service, exc)
        raise GatewayTimeoutError(
            f"El servicio '{service}' no ha respondido a tiempo. La operación puede haberse "
            "completado: repítala con la misma Idempotency-Key para obtener su resultado."
        ) from exc
    except httpx.TransportError as exc:
        _log.warning("upstream %s unreachable: %r", service, exc)
        raise BadGatewayError(f"No se puede contactar con el servicio '{service}'.") from exc
    except ClientDisconnect:
        # The client left mid-upload; nobody will read this answer.
        return Response(status_code=400)
    return _UpstreamStreamingResponse(upstream, service)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"La petición supera el máximo de {limit} bytes que admite la API.")


async def _counted(body: AsyncIterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in body:
        size += len(chunk)
        if limit is not None and size > limit:
            raise _too_large(limit)
        yield chunk


async def probe_readiness(
    client: httpx.AsyncClient, service_urls: Mapping[str, str], *, timeout: float
) -> dict[str, str]:
    """Asks every service's /readyz at once; maps each service to "ok" or why not."""

    async def probe(name: str, base_url: str) -> tuple[str, str]:
        try:
            response = await client.get(base_url.rstrip("/") + "/readyz", timeout=timeout)
        except httpx.TimeoutException:
            return name, "sin respuesta a tiempo"
        except httpx.HTTPError:
            return name, "no responde"
        return name, "ok" if response.status_code == 200 else f"responde {response.status_code}"

    results = await asyncio.gather(*(probe(n, u) for n, u in service_urls.items()))
    return dict(results)
