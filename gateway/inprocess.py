"""Dispatch from the gateway to a service app living in the same process: no HTTP hop.

In ``consistorio up`` the gateway and every service share one process and one event
loop. Relaying a call over loopback HTTP there costs more CPU than the call itself
(an HTTP client, a second HTTP parser, copies of every body), so the gateway hands the
request to the service's ASGI app directly. The service sees what the streaming proxy
would have given it: the same path under ``/api/v1/<service>``, the client's headers
minus hop-by-hop ones, the gateway's ``X-Request-ID`` and ``X-Forwarded-*``, the real
client address, and the bearer token, which the service verifies again (its own
authentication holds whoever calls it). Bodies still stream both ways: the service reads
the client's body as it arrives and its answer is written to the client as it is
produced.

The gateway's own layers (authentication, rate limits, request ids, CORS, problem
answers) wrap this response exactly as they wrap the proxied one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import unquote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.proxy import HOP_BY_HOP, BadGatewayError, upstream_request_headers, upstream_target
from services.common.errors import PayloadTooLarge, ProblemError, problem_response
from services.common.telemetry import current_traceparent

__all__ = ["InProcessResponse"]

_log = logging.getLogger("consistorio.gateway.inprocess")

# Hop-by-hop headers, and those the server in front of the gateway sets itself.
_DROP_FROM_SERVICE = frozenset(name.encode("latin-1") for name in HOP_BY_HOP) | {
    b"date",
    b"server",
}


def _relayed(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The service's response headers minus those meaningful for one hop only."""
    drop = set(_DROP_FROM_SERVICE)
    for name, value in headers:
        if name.lower() == b"connection":
            drop.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return [(name, value) for name, value in headers if name.lower() not in drop]


class InProcessResponse(Response):
    """A response produced by calling a service's ASGI app with the request re-targeted.

    Built by the gateway's route like the proxied response, so every middleware of the
    gateway (request id, CORS, limits) sees it pass; its ``__call__`` runs the service.
    """

    def __init__(
        self,
        app: ASGIApp,
        request: Request,
        *,
        service: str,
        path: str,
        request_id: str,
        max_body_bytes: int | None,
    ) -> None:
        # Response.__init__ is skipped on purpose: there is no body or header to render.
        self.background = None
        self._app = app
        self._service = service
        self._limit = max_body_bytes
        self._scope = _service_scope(request, service=service, path=path, request_id=request_id)
        # Told the service's status when its answer starts (its status is not known before).
        self.on_status: Callable[[int], object] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit
        received = 0
        overflowed = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, overflowed
            if overflowed:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request" and limit is not None:
                received += len(message.get("body", b""))
                if received > limit:
                    # The service sees a client gone; the client gets the gateway's 413.
                    overflowed = True
                    return {"type": "http.disconnect"}
            return message

        async def filtered_send(message: Message) -> None:
            nonlocal started
            if overflowed and not started:
                return  # the 413 below is the answer
            if message["type"] == "http.response.start":
                started = True
                if self.on_status is not None:
                    self.on_status(message["status"])
                message = {**message, "headers": _relayed(list(message.get("headers", [])))}
            await send(message)

        instance = scope.get("path")
        try:
            await self._app(self._scope, counted_receive, filtered_send)
        except ClientDisconnect:
            if not overflowed:
                return  # the client left; nobody reads an answer
        except Exception:
            # A service's unhandled error is re-raised by Starlette after its 500 went out
            # (for the server to log it). Here the gateway is that server.
            _log.exception("unhandled error in service %s", self._service)
            if not started and not overflowed:
                error: ProblemError = BadGatewayError(
                    f"El servicio '{self._service}' ha fallado al responder."
                )
                await _problem(error, instance)(scope, receive, send)
                return
        if overflowed and not started:
            assert limit is not None
            too_large = PayloadTooLarge(
                f"La petición supera el máximo de {limit} bytes que admite la API."
            )
            await _problem(too_large, instance)(scope, receive, send)
        if self.background is not None:
            await self.background()


def _problem(error: ProblemError, instance: str | None) -> Response:
    return problem_response(
        error.status, error.detail, title=error.title, slug=error.slug, instance=instance
    )


def _service_scope(request: Request, *, service: str, path: str, request_id: str) -> Scope:
    """The scope the service would have received from the streaming proxy."""
    outer = request.scope
    raw_path, query = upstream_target(outer, service, path)
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in upstream_request_headers(request, request_id)
    ]
    traceparent = current_traceparent()
    if traceparent is not None:
        # The proxy's instrumented client carries the trace the same way.
        headers = [(n, v) for n, v in headers if n not in (b"traceparent", b"tracestate")]
        headers.append((b"traceparent", traceparent.encode("latin-1")))
    host = request.headers.get("host")
    if host:
        headers.append((b"host", host.encode("latin-1")))
    return {
        "type": "http",
        "asgi": outer.get("asgi", {"version": "3.0"}),
        "http_version": outer.get("http_version", "1.1"),
        "method": outer["method"],
        "scheme": outer.get("scheme", "http"),
        "server": outer.get("server"),
        "client": outer.get("client"),
        "root_path": "",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query,
        "headers": headers,
        # A fresh state: the gateway's (its rate-limit quota, request id) is not the service's.
        "state": {},
        "extensions": outer.get("extensions", {}),
    }
