"""The API gateway: the only public HTTP entrance of Consistorio.

It authenticates every ``/api/v1`` call at the edge, rate-limits it, streams it
to the owning service (over HTTP, or as a direct ASGI call when the service's app
lives in this process: ``consistorio up``), and serves the merged OpenAPI document,
health and readiness. The services verify the forwarded token again; the gateway is a
first filter, not the only one.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from http import HTTPStatus

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.inprocess import InProcessResponse
from gateway.limits import install_admission, upstream_timeout
from gateway.openapi_merge import MergedOpenApi
from gateway.proxy import forward, probe_readiness, upstream_origin
from gateway.ratelimit import MemoryRateLimiter, RateDecision, RateLimiter, RedisRateLimiter
from gateway.upstream import UpstreamPool
from services.common.auth import Principal, TokenVerifier, bearer_token
from services.common.errors import (
    PROBLEM_JSON,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    Unauthorized,
    install_problem_handlers,
    problem_response,
)
from services.common.http_server import RequestLimitsMiddleware
from services.common.metrics import install_metrics
from services.common.misses import MissLimiter
from services.common.public_paths import PublicPath
from services.common.settings import Settings
from services.common.telemetry import instrument_app, instrument_httpx_client

__all__ = ["TooManyRequestsError", "create_gateway"]

_log = logging.getLogger("consistorio.gateway")

_WINDOW_SECONDS = 60
_PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_EXPOSED_HEADERS = [
    "X-Request-ID",
    "Location",
    "Idempotent-Replayed",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "ETag",
    "Content-Disposition",
]
_CORS_FAILURES = {
    "origin": "origen",
    "method": "método",
    "headers": "cabeceras",
    "private-network": "red privada",
}


class TooManyRequestsError(ProblemError):
    """The caller spent its quota; ``Retry-After`` says when to come back."""

    status = 429
    slug = "demasiadas-peticiones"


class _EdgeHeadersMiddleware:
    """Puts X-Request-ID and the rate-limit headers on every response.

    Pure ASGI (no buffering of streamed bodies) and outermost, so preflights,
    404s and even crashes carry the request ID. It also renders unexpected
    errors itself: Starlette's own error handler sits outside user middleware
    and would answer without the ID.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", []))
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                quota = state.get("rate_limit")
                if quota is not None:
                    limit, decision = quota
                    headers["RateLimit-Limit"] = str(limit)
                    headers["RateLimit-Remaining"] = str(decision.remaining)
                    headers["RateLimit-Reset"] = str(decision.reset_seconds)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            return
        except Exception:
            if started:
                raise
            _log.exception("unhandled error in gateway request %s", request_id)
            response = problem_response(
                500, "Error interno. Se ha registrado para su análisis.", instance=scope["path"]
            )
            await response(scope, receive, send_with_headers)


class _ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that a refused preflight is problem+json like any error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        failed = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        what = ", ".join(_CORS_FAILURES.get(f, f) for f in failed)
        headers = {
            k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")
        }
        return problem_response(
            400, f"Petición CORS no permitida ({what}).", slug="cors-no-permitido", headers=headers
        )


class _Upstreams:
    """The clients to the services, which exist only while the app's lifespan runs.

    The proxy's hop goes through the lean pool (gateway.upstream); readiness probes and
    the OpenAPI merge, rare and not on any request's path, through httpx.
    """

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._pool: UpstreamPool | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("gateway lifespan not started: serve the app with lifespan on")
        return self._client

    @property
    def pool(self) -> UpstreamPool:
        if self._pool is None:
            raise RuntimeError("gateway lifespan not started: serve the app with lifespan on")
        return self._pool

    @asynccontextmanager
    async def running(self, timeout: httpx.Timeout) -> AsyncIterator[None]:
        # trust_env=False: service-to-service traffic must never follow an
        # HTTP(S)_PROXY meant for outbound internet access.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
            trust_env=False,
        )
        # Client spans for the probes and the merge (the hop sends its traceparent itself).
        instrument_httpx_client(self._client)
        self._pool = UpstreamPool(
            connect_timeout=timeout.connect or timeout.read or 5.0,
            read_timeout=timeout.read or 30.0,
            max_connections=200,
            max_idle_per_service=50,
        )
        try:
            yield
        finally:
            client, self._client = self._client, None
            pool, self._pool = self._pool, None
            await pool.aclose()
            await client.aclose()


def _rate_limiter(settings: Settings) -> RateLimiter:
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url)
    return MemoryRateLimiter()


def _client_ip(request: Request) -> str:
    # The server believes X-Forwarded-For only from FORWARDED_ALLOW_IPS (see
    # services.common.http_server), so this is the real client or its trusted proxy's
    # view of it, never what a client claims.
    return request.client.host if request.client else "desconocida"


def _version() -> str:
    try:
        return importlib.metadata.version("consistorio")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def create_gateway(
    *,
    settings: Settings,
    verifier: TokenVerifier,
    service_urls: dict[str, str],
    public_routes: APIRouter | None = None,
    public_paths: Sequence[PublicPath] = (),
    service_apps: Mapping[str, ASGIApp] | None = None,
) -> FastAPI:
    """Builds the gateway app; its lifespan owns the pooled client and the rate limiter.

    ``service_urls`` maps each service name to its base URL (no path); a call to
    ``/api/v1/<service>/...`` goes to ``<base>/api/v1/<service>/...``.
    ``public_routes`` are served without authentication, rate-limited per IP.
    ``public_paths`` are services' public paths (``/tsa``, ``/pki/ca.pem``…), forwarded
    to ``/api/v1/<service>/<upstream>`` anonymously unless their setting asks for a token.
    ``service_apps`` maps a service name to its ASGI app when it runs in this process
    (``consistorio up``): its calls are dispatched to the app directly, with no HTTP hop
    (see gateway.inprocess); ``service_urls`` still serve readiness and the OpenAPI merge.
    """
    urls = dict(service_urls)
    apps = dict(service_apps or {})
    for url in urls.values():
        upstream_origin(url)  # an unusable URL stops the gateway now, not at its first call
    limiter = _rate_limiter(settings)
    upstreams = _Upstreams()

    async def relay(request: Request, *, service: str, path: str) -> Response:
        """Sends the call to the service: in process when its app is here, else over HTTP."""
        app = apps.get(service)
        if app is None:
            base_url = urls.get(service)
            if base_url is None:
                raise NotFound(f"No existe el servicio '{service}'.")
            return await forward(
                upstreams.pool,
                request,
                service=service,
                path=path,
                base_url=base_url,
                request_id=request.state.request_id,
                max_body_bytes=settings.gateway_max_body_bytes,
            )
        limit = settings.gateway_max_body_bytes
        declared = request.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"La petición supera el máximo de {limit} bytes que admite la API."
            )
        return InProcessResponse(
            app,
            request,
            service=service,
            path=path,
            request_id=request.state.request_id,
            max_body_bytes=limit,
        )

    probe_timeout = min(settings.proxy_timeout_seconds, 5.0)
    openapi = MergedOpenApi(
        urls, title="Consistorio", version=_version(), fetch_timeout_seconds=probe_timeout
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with upstreams.running(upstream_timeout(settings)):
                yield
        finally:
            await limiter.aclose()

    app = FastAPI(
        title="Consistorio",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_metrics(app, service="gateway")
    instrument_app(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's routing errors carry English phrases; users read Spanish.
        detail = str(exc.detail)
        if detail == HTTPStatus(exc.status_code).phrase:
            if exc.status_code == 404:
                detail = f"No existe el recurso {request.url.path}."
            elif exc.status_code == 405:
                detail = f"El método {request.method} no está permitido en {request.url.path}."
        return problem_response(
            exc.status_code,
            detail,
            slug=NotFound.slug if exc.status_code == 404 else None,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    if settings.cors_origins:
        app.add_middleware(
            _ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=_PROXY_METHODS,
            allow_headers=["*"],
            expose_headers=_EXPOSED_HEADERS,
            allow_credentials=False,
        )
    install_admission(app, settings)
    app.add_middleware(
        RequestLimitsMiddleware,
        max_headers=settings.http_max_headers,
        max_header_bytes=settings.http_max_header_bytes,
        body_timeout_seconds=settings.http_body_timeout_seconds,
    )
    app.add_middleware(_EdgeHeadersMiddleware)

    async def spend(request: Request, key: str, limit: int) -> None:
        decision: RateDecision = await limiter.hit(key, limit, _WINDOW_SECONDS)
        request.state.rate_limit = (limit, decision)
        if not decision.allowed:
            raise TooManyRequestsError(
                f"Demasiadas peticiones: vuelva a intentarlo en {decision.reset_seconds} s.",
                headers={"Retry-After": str(decision.reset_seconds)},
            )

    async def anonymous_quota(request: Request) -> None:
        await spend(request, f"ip:{_client_ip(request)}", settings.rate_limit_anonymous_per_minute)

    async def authenticated(request: Request) -> Principal:
        try:
            principal = await verifier.verify(bearer_token(request.headers.get("authorization")))
        except Unauthorized:
            # Failed attempts spend the address's anonymous quota: token guessing is throttled.
            await anonymous_quota(request)
            raise
        # The council's quota over all its users first, so the headers show the user's.
        await spend(request, f"tenant:{principal.tenant}", settings.rate_limit_tenant_per_minute)
        await spend(
            request, f"user:{principal.tenant}:{principal.sub}", settings.rate_limit_per_minute
        )
        return principal

    # First of the routes: every API call is matched here without trying the others
    # (no other route lives under /api/v1; see _add_public_path).
    @app.api_route("/api/v1/{service}", methods=_PROXY_METHODS, include_in_schema=False)
    @app.api_route("/api/v1/{service}/{path:path}", methods=_PROXY_METHODS)
    async def proxy(
        service: str, request: Request, path: str = "", _: Principal = Depends(authenticated)
    ) -> Response:
        """Streams the call to the service that owns the path."""
        if service not in urls and service not in apps:
            raise NotFound(f"No existe el servicio '{service}'.")
        if any(segment in (".", "..") for segment in path.split("/")):
            # A client or server on the way might resolve them and reach another service.
            raise ProblemError("La ruta no puede contener segmentos '.' ni '..'.")
        return await relay(request, service=service, path=path)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=None)
    async def readyz() -> JSONResponse:
        """Readiness: every service says it is ready."""
        statuses = await probe_readiness(upstreams.client, urls, timeout=probe_timeout)
        if all(status == "ok" for status in statuses.values()):
            return JSONResponse({"status": "ok", "services": statuses})
        failing = ", ".join(f"{s} ({why})" for s, why in statuses.items() if why != "ok")
        problem = problem_response(503, f"Servicios no disponibles: {failing}.")
        body = json.loads(bytes(problem.body)) | {"services": statuses}
        return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)

    @app.get("/openapi.json", dependencies=[Depends(anonymous_quota)])
    async def openapi_document() -> JSONResponse:
        """The merged OpenAPI document of every service."""
        return JSONResponse(await openapi.get(upstreams.client))

    @app.get("/docs", dependencies=[Depends(anonymous_quota)])
    async def docs() -> HTMLResponse:
        """Swagger UI over the merged document."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Consistorio · API",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    if public_routes is not None:
        app.include_router(public_routes, dependencies=[Depends(anonymous_quota)])

    misses = MissLimiter(settings.verificar_misses_per_minute)
    for public in public_paths:
        _add_public_path(
            app, public, settings, relay, spend, anonymous_quota, authenticated, misses
        )

    return app


def _add_public_path(
    app: FastAPI,
    public: PublicPath,
    settings: Settings,
    relay: Callable[..., Awaitable[Response]],
    spend: Callable[[Request, str, int], Awaitable[None]],
    anonymous_quota: Callable[[Request], Awaitable[None]],
    authenticated: Callable[[Request], Awaitable[Principal]],
    misses: MissLimiter,
) -> None:
    """Exposes a service's public path, anonymously (rate-limited) unless configured not to.

    A path with its own :class:`RateLimitPolicy` spends that bucket (per address), not
    the anonymous one: Redsys' notifications neither throttle nor are throttled by
    citizens behind the same address.
    """
    if public.path.startswith("/api/v1/"):
        raise ValueError(f"public path {public.path} would be shadowed by the API's routes")
    guard: Callable[[Request], Awaitable[object]]
    if public.requires_token(settings):
        guard = authenticated
    elif public.rate_limit is not None:
        policy = public.rate_limit

        async def own_quota(request: Request) -> None:
            await spend(
                request, f"{policy.bucket}:ip:{_client_ip(request)}", policy.per_minute(settings)
            )

        guard = own_quota
    else:
        guard = anonymous_quota

    async def forward_public(request: Request) -> Response:
        client = _client_ip(request)
        if public.counts_misses:
            wait = misses.retry_after(client)
            if wait is not None:
                raise TooManyRequestsError(
                    f"Demasiados códigos inexistentes: vuelva a intentarlo en {wait} s.",
                    headers={"Retry-After": str(wait)},
                )
        try:
            upstream = public.upstream.format(**request.path_params)
        except (KeyError, IndexError) as exc:
            raise NotFound(f"No existe el recurso {request.url.path}.") from exc
        response = await relay(request, service=public.service, path=upstream)
        if public.counts_misses:
            if isinstance(response, InProcessResponse):
                # Its status is known only once the service answers.
                response.on_status = lambda status: (
                    misses.record_miss(client) if status == 404 else None
                )
            elif response.status_code == 404:
                misses.record_miss(client)
        return response

    app.add_api_route(
        public.path,
        forward_public,
        methods=list(public.methods),
        dependencies=[Depends(guard)],
        include_in_schema=False,
    )
