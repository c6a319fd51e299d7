"""The streaming reverse proxy from the gateway to a service, and upstream probes.

Bodies are relayed chunk by chunk in both directions, so an 8 MiB upload or a
large document download never sits whole in the gateway's memory. The hop is written
and read by the gateway's own lean client (gateway.upstream): this module decides what
is sent (path, headers, framing, the body limit) and what a failure answers (503 when
nothing reached the service, 504 when it did not answer in time, 502 when it broke).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import quote, urlsplit

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.limits import UpstreamUnavailableError
from gateway.upstream import (
    Exchange,
    UpstreamBroken,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from services.common.errors import PayloadTooLarge, ProblemError
from services.common.telemetry import current_traceparent

__all__ = [
    "HOP_BY_HOP",
    "BadGatewayError",
    "GatewayTimeoutError",
    "forward",
    "probe_readiness",
    "upstream_request_headers",
    "upstream_response_headers",
    "upstream_origin",
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
# RFC 9110 §9.2.2: sending one of these twice does what sending it once does.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Bodies up to this size are read whole before the hop; larger ones stream through.
_WHOLE_BODY_BYTES = 64 * 1024
# The same sets as bytes, as the ASGI scope and the upstream client carry names.
_DROP_FROM_CLIENT = frozenset(n.encode("latin-1") for n in HOP_BY_HOP | _SET_BY_GATEWAY) | {
    b"content-length",
}
_DROP_FROM_SERVICE = frozenset(n.encode("latin-1") for n in HOP_BY_HOP | _SET_BY_SERVER)


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


def upstream_response_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers relayed to the client: the service's (names lower-case), minus hop-by-hop
    and server-set ones."""
    drop = _DROP_FROM_SERVICE
    for name, value in headers:
        if name == b"connection":
            drop = drop | {t.strip().lower() for t in value.split(b",") if t.strip()}
    return [(name, value) for name, value in headers if name not in drop]


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


@functools.lru_cache(maxsize=256)
def upstream_origin(base_url: str) -> tuple[str, int, bytes, bytes]:
    """Host, port, Host header and path prefix of a service's base URL (plain http on
    the inside; a prefix, if any, goes before ``/api/v1/<service>`` as before)."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"the gateway reaches services over plain http://host:port ({base_url})")
    port = parts.port or 80
    host_header = parts.netloc.rsplit("@", 1)[-1].encode("latin-1")
    return parts.hostname, port, host_header, parts.path.rstrip("/").encode("latin-1")


class _RelayedResponse(Response):
    """The service's answer, written to the client as it arrives.

    Whatever happens while it is written (the client leaving, the service breaking the
    stream) the exchange is closed, so the connection goes back to the pool or away.
    """

    def __init__(self, exchange: Exchange, service: str) -> None:
        # Response.__init__ is skipped on purpose: status and headers are the service's.
        self.status_code = exchange.status
        self.raw_headers = upstream_response_headers(exchange.headers)
        self.background = None
        self._exchange = exchange
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self._exchange
        try:
            start = {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
            if exchange.complete:
                # The usual small answer: already whole, one write.
                await send(start)
                await send({"type": "http.response.body", "body": exchange.take_all()})
                return
            await send(start)
            first = exchange.take_all()
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            try:
                async for chunk in exchange.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:
                # Headers are gone already: aborting the connection is the only honest
                # signal, a silently truncated body would look complete.
                _log.warning("upstream %s broke the response stream: %r", self._service, exc)
                raise
            await send({"type": "http.response.body", "body": b""})
        finally:
            exchange.close()


async def forward(
    pool: UpstreamPool,
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
    scope = request.scope
    headers = _request_headers(scope, request_id)
    declared: bytes | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = value
        elif name == b"transfer-encoding":
            chunked = True
    body: AsyncIterator[bytes] | None = None
    whole = b""
    if declared is not None and declared.strip(b" 0") == b"":
        framing = b"content-length: 0\r\n"  # said to have no body: nothing to stream
    elif declared is not None:
        size = int(declared) if declared.isdigit() else None
        if max_body_bytes is not None and size is not None and size > max_body_bytes:
            raise _too_large(max_body_bytes)
        framing = b"content-length: " + declared + b"\r\n"
        if size is not None and size <= _WHOLE_BODY_BYTES:
            # A small body (a JSON document) is read whole and sent with the head in one
            # write: no task to stream it, and a stale pooled connection can be retried.
            try:
                whole = await request.body()
            except ClientDisconnect:
                return Response(status_code=400)
        else:
            body = _counted(request.stream(), max_body_bytes)
    elif chunked:
        body = _counted(request.stream(), max_body_bytes)
        framing = b"transfer-encoding: chunked\r\n"
    elif request.method in ("POST", "PUT", "PATCH"):
        framing = b"content-length: 0\r\n"
    else:
        framing = b""
    # The client's Content-Length frames the body as sent; chunked only without one.
    chunked = chunked and declared is None
    host, port, host_header, prefix = upstream_origin(base_url)
    raw_path, query = upstream_target(scope, service, path)
    target = prefix + raw_path.encode("latin-1") + (b"?" + query if query else b"")
    head = b"".join(
        [
            request.method.encode("ascii"),
            b" ",
            target,
            b" HTTP/1.1\r\nhost: ",
            host_header,
            b"\r\n",
            *(b"%s: %s\r\n" % pair for pair in headers),
            framing,
            b"\r\n",
            whole,
        ]
    )
    try:
        exchange = await pool.send(
            host,
            port,
            head,
            body,
            chunked=chunked,
            head_only=request.method == "HEAD",
            idempotent=request.method in _IDEMPOTENT,
        )
    except UpstreamUnreachable as exc:
        # Nothing reached the service: a 503 the client may retry (gateway/limits.py).
        _log.debug("upstream %s not reachable now: %r", service, exc)
        raise UpstreamUnavailableError(service) from exc
    except UpstreamTimeout as exc:
        _log.warning("upstream %s timed out: %r", service, exc)
        raise GatewayTimeoutError(
            f"El servicio '{service}' no ha respondido a tiempo. La operación puede haberse "
            "completado: repítala con la misma Idempotency-Key para obtener su resultado."
        ) from exc
    except UpstreamBroken as exc:
        _log.warning("upstream %s unreachable: %r", service, exc)
        raise BadGatewayError(f"No se puede contactar con el servicio '{service}'.") from exc
    except ClientDisconnect:
        # The client left mid-upload; nobody will read this answer.
        return Response(status_code=400)
    return _RelayedResponse(exchange, service)


def _request_headers(scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
    """What :func:`upstream_request_headers` gives, as bytes and with the trace carried."""
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    drop = _DROP_FROM_CLIENT
    for name, value in raw:
        if name == b"connection":
            drop = drop | {t.strip().lower() for t in value.split(b",") if t.strip()}
    headers = [
        (name, value)
        for name, value in raw
        if name not in drop and name not in (b"traceparent", b"tracestate")
    ]
    if not any(name == b"accept-encoding" for name, _ in raw):
        # No Accept-Encoding means any coding to a server; the client asked for none.
        headers.append((b"accept-encoding", b"identity"))
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
    headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
    for name, value in raw:
        if name == b"host":
            headers.append((b"x-forwarded-host", value))
            break
    headers.append((b"x-request-id", request_id.encode("latin-1")))
    traceparent = current_traceparent()
    if traceparent is not None:
        # The gateway's span is the service's parent: one trace per request.
        headers.append((b"traceparent", traceparent.encode("latin-1")))
    else:
        headers.extend((n, v) for n, v in raw if n in (b"traceparent", b"tracestate"))
    return headers


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
