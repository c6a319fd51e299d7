"""The gateway over real sockets: two upstream services and the gateway on uvicorn.

Tokens are real ES256 JWTs checked against a development JWKS; streaming is
proven by making each side wait for the other mid-body, which a buffering
proxy could never satisfy.
"""

import asyncio
import contextlib
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from redis.asyncio import Redis

from gateway.app import create_gateway
from gateway.ratelimit import RedisRateLimiter
from services.common.auth import JwksKeySource, TokenVerifier
from services.common.devkeys import ensure_dev_signing_key, issue_dev_token
from services.common.public_paths import PublicPath, RateLimitPolicy
from services.common.settings import Settings
from tests.support.gateway_settings import settings_for_tests
from tests.support.servers import REDIS_URL, require_server
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
ORIGIN = "https://sede.ejemplo.es"
KNOWN_TENANTS = {"03014", "46250"}
PROBLEM = "application/problem+json"


@dataclass
class Upstream:
    """Knobs the tests turn on a running upstream service."""

    name: str
    ready: bool = True
    upload_started: asyncio.Event = field(default_factory=asyncio.Event)
    download_released: asyncio.Event = field(default_factory=asyncio.Event)
    slow_started: int = 0
    slow_released: asyncio.Event = field(default_factory=asyncio.Event)


def _block(i: int) -> bytes:
    return bytes([i % 251]) * MIB


def _upstream_app(up: Upstream) -> FastAPI:
    # Both services name a schema "Documento" with different fields, so the merge must
    # rename one. Local classes work because this module does not postpone annotations.
    if up.name == "registro":

        class Documento(BaseModel):
            csv: str

    else:

        class Documento(BaseModel):  # type: ignore[no-redef]
            expediente: str
            fase: int

    app = FastAPI(title=up.name)
    router = APIRouter(prefix=f"/api/v1/{up.name}")

    @router.api_route("", methods=["GET", "POST"], include_in_schema=False)
    @router.api_route("/eco", methods=["GET", "POST", "DELETE"], include_in_schema=False)
    @router.api_route("/eco/{resto:path}", methods=["GET"], include_in_schema=False)
    async def eco(request: Request) -> dict[str, Any]:
        return {
            "service": up.name,
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": dict(request.headers),
        }

    @router.post("/documentos")
    async def crear(documento: Documento) -> Documento:
        return documento

    @router.get("/lento", include_in_schema=False)
    async def lento() -> dict[str, str]:
        up.slow_started += 1
        await asyncio.wait_for(up.slow_released.wait(), 10)
        return {"service": up.name}

    @router.get("/saturado", include_in_schema=False)
    async def saturado() -> Response:
        return Response(
            b'{"status": 503}',
            status_code=503,
            media_type="application/problem+json",
            headers={"Retry-After": "7"},
        )

    @router.post("/subida")
    async def subida(request: Request) -> dict[str, Any]:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            digest.update(chunk)
            if size:
                up.upload_started.set()
        return {
            "size": size,
            "sha256": digest.hexdigest(),
            "content_length": request.headers.get("content-length"),
        }

    @router.get("/descarga")
    async def descarga() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield _block(0)
            # Only a client that already got the first block can release the rest.
            await asyncio.wait_for(up.download_released.wait(), 10)
            for i in range(1, 8):
                yield _block(i)

        return StreamingResponse(body(), media_type="application/octet-stream")

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        return JSONResponse({"ready": up.ready}, status_code=200 if up.ready else 503)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(router)
    return app


class _TestServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # pytest keeps its own Ctrl-C handling.
        yield


@contextlib.asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # No proxy headers: the test client is a direct caller, so what it claims in
    # X-Forwarded-For must not become its address.
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", access_log=False, proxy_headers=False
    )
    server = _TestServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before starting")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _tenant_is_active(tenant: str) -> bool:
    return tenant in KNOWN_TENANTS


@dataclass
class Platform:
    keys_dir: Path
    upstreams: dict[str, Upstream]
    gateway: str
    gateway_down: str
    gateway_limited: str
    gateway_per_path: str
    gateway_council: str
    gateway_admission: str

    def token(self, *, tenant: str = "03014", sub: str = "ana", **kwargs: Any) -> str:
        return issue_dev_token(self.keys_dir, tenant=tenant, sub=sub, roles=["registro"], **kwargs)

    def auth(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}


def _settings(**overrides: Any) -> Settings:
    specific: dict[str, Any] = {
        "proxy_timeout_seconds": 15.0,
    }
    return settings_for_tests(**(specific | overrides))


@pytest_asyncio.fixture(scope="module", params=["http", "inprocess"])
async def platform(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    """The gateway in both of its modes: streaming over HTTP to the services, or calling
    their apps in its own process (``consistorio up``); every test holds for both."""
    keys_dir = tmp_path_factory.mktemp("keys")
    verifier = TokenVerifier(
        JwksKeySource(str(ensure_dev_signing_key(keys_dir))),
        issuer="consistorio-dev",
        audience="consistorio",
        algorithms=["ES256"],
        tenant_is_active=_tenant_is_active,
    )
    upstreams = {name: Upstream(name) for name in ("registro", "tramitador")}
    public = APIRouter()

    @public.get("/verificar/{csv}")
    async def verificar(csv: str) -> dict[str, str]:
        return {"csv": csv}

    broken = APIRouter()

    @broken.get("/fallo")
    async def fallo() -> dict[str, str]:
        raise RuntimeError("fallo provocado por la prueba")

    async with contextlib.AsyncExitStack() as stack:
        apps = {name: _upstream_app(up) for name, up in upstreams.items()}
        urls = {name: await stack.enter_async_context(_serve(app)) for name, app in apps.items()}
        in_process = apps if request.param == "inprocess" else None
        gateway = create_gateway(
            settings=_settings(cors_origins=[ORIGIN]),
            verifier=verifier,
            service_urls=urls,
            service_apps=in_process,
            public_routes=broken,
            public_paths=(
                PublicPath("/publico/eco", "registro", "eco", methods=("GET", "POST")),
                PublicPath("/privado/eco", "registro", "eco", token_required=lambda s: True),
                PublicPath("/sin-servicio", "ausente", "eco"),
                PublicPath("/con-parametro/{codigo}", "registro", "eco/{codigo}"),
            ),
        )
        gateway_down = create_gateway(
            settings=_settings(),
            verifier=verifier,
            service_urls={
                "registro": urls["registro"],
                "caido": f"http://127.0.0.1:{_closed_port()}",
            },
            service_apps=None if in_process is None else {"registro": apps["registro"]},
        )
        gateway_limited = create_gateway(
            settings=_settings(rate_limit_per_minute=2, rate_limit_anonymous_per_minute=3),
            verifier=verifier,
            service_urls=urls,
            service_apps=in_process,
            public_routes=public,
        )
        gateway_per_path = create_gateway(
            settings=_settings(rate_limit_anonymous_per_minute=3, rate_limit_redsys_per_minute=5),
            verifier=verifier,
            service_urls=urls,
            public_paths=(
                PublicPath("/ciudadano/eco", "registro", "eco"),
                PublicPath(
                    "/banco/eco",
                    "registro",
                    "eco",
                    methods=("POST",),
                    rate_limit=RateLimitPolicy("banco", lambda s: s.rate_limit_redsys_per_minute),
                ),
            ),
        )
        gateway_council = create_gateway(
            settings=_settings(rate_limit_tenant_per_minute=3),
            verifier=verifier,
            service_urls=urls,
        )
        gateway_admission = create_gateway(
            settings=_settings(gateway_max_in_flight_per_tenant=2),
            verifier=verifier,
            service_urls=urls,
        )
        yield Platform(
            keys_dir=keys_dir,
            upstreams=upstreams,
            gateway=await stack.enter_async_context(_serve(gateway)),
            gateway_down=await stack.enter_async_context(_serve(gateway_down)),
            gateway_limited=await stack.enter_async_context(_serve(gateway_limited)),
            gateway_per_path=await stack.enter_async_context(_serve(gateway_per_path)),
            gateway_council=await stack.enter_async_context(_serve(gateway_council)),
            gateway_admission=await stack.enter_async_context(_serve(gateway_admission)),
        )


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
        yield http


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["x-request-id"]
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["detail"]
    return body


async def test_healthz_answers(platform: Platform, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{platform.gateway}/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_api_without_token_is_401_problem(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{platform.gateway}/api/v1/registro/eco")

    _assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_bad_tokens_are_401_problem(platform: Platform, client: httpx.AsyncClient) -> None:
    stranger_keys = platform.keys_dir.parent / f"otras-{uuid.uuid4().hex}"
    forged = issue_dev_token(stranger_keys, tenant="03014", sub="ana", roles=["admin"])
    headers = [
        {"Authorization": "Bearer no-es-un-jwt"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {platform.token(ttl_seconds=-60)}"},
        {"Authorization": f"Basic {platform.token()}"},
    ]

    for header in headers:
        response = await client.get(f"{platform.gateway}/api/v1/registro/eco", headers=header)
        _assert_problem(response, 401)


async def test_token_of_unknown_tenant_is_401(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        f"{platform.gateway}/api/v1/registro/eco", headers=platform.auth(tenant="28079")
    )

    body = _assert_problem(response, 401)
    assert "28079" in body["detail"]


async def test_proxies_path_query_and_authorization(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    auth = platform.auth(tenant="46250")
    response = await client.get(
        f"{platform.gateway}/api/v1/tramitador/eco?q=a%20b&x=1&x=2",
        headers={
            **auth,
            "X-Forwarded-For": "203.0.113.9",
            "Connection": "keep-alive, X-Privada",
            "X-Privada": "solo-este-salto",
            "X-Cualquiera": "si-pasa",
        },
    )

    assert response.status_code == 200, response.text
    echoed = response.json()
    assert echoed["service"] == "tramitador"
    assert echoed["raw_path"] == "/api/v1/tramitador/eco"
    assert echoed["query"] == "q=a%20b&x=1&x=2"
    headers = echoed["headers"]
    assert headers["authorization"] == auth["Authorization"]
    assert headers["x-request-id"] == response.headers["x-request-id"]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == platform.gateway.removeprefix("http://")
    assert "x-privada" not in headers
    assert "x-cualquiera" in headers
    assert int(response.headers["ratelimit-limit"]) == 10_000
    assert int(response.headers["ratelimit-remaining"]) < 10_000


async def test_encoded_path_passes_unchanged_and_dot_segments_are_refused(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    auth = platform.auth()

    response = await client.get(f"{platform.gateway}/api/v1/registro/eco/a%2Fb%20c", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["raw_path"] == "/api/v1/registro/eco/a%2Fb%20c"

    response = await client.get(
        f"{platform.gateway}/api/v1/registro/%2E%2E/tramitador/eco", headers=auth
    )
    _assert_problem(response, 400)


async def test_post_body_and_upstream_status_pass_through(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        f"{platform.gateway}/api/v1/registro/documentos",
        headers=platform.auth(),
        json={"csv": "CSV-123"},
    )
    assert response.status_code == 200
    assert response.json() == {"csv": "CSV-123"}

    invalid = await client.post(
        f"{platform.gateway}/api/v1/registro/documentos",
        headers=platform.auth(),
        json={"sin": "csv"},
    )
    assert invalid.status_code == 422


async def test_request_id_is_kept_when_sane_and_generated_otherwise(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    url = f"{platform.gateway}/api/v1/registro/eco"
    auth = platform.auth()

    kept = await client.get(url, headers={**auth, "X-Request-ID": "peticion-1.A_b"})
    assert kept.headers["x-request-id"] == "peticion-1.A_b"
    assert kept.json()["headers"]["x-request-id"] == "peticion-1.A_b"

    for insane in ("con espacios", "x" * 129, "a;b"):
        replaced = await client.get(url, headers={**auth, "X-Request-ID": insane})
        assert replaced.headers["x-request-id"] != insane
        assert uuid.UUID(replaced.headers["x-request-id"]).version == 4

    generated = await client.get(url, headers=auth)
    assert uuid.UUID(generated.headers["x-request-id"]).version == 4

    missing = await client.get(f"{platform.gateway}/no-existe", headers={"X-Request-ID": "r-404"})
    _assert_problem(missing, 404)
    assert missing.headers["x-request-id"] == "r-404"


async def test_unknown_service_and_unknown_paths_are_404_problem(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    unknown_service = await client.get(
        f"{platform.gateway}/api/v1/padron/habitantes", headers=platform.auth()
    )
    body = _assert_problem(unknown_service, 404)
    assert "padron" in body["detail"]

    unknown_path = await client.get(f"{platform.gateway}/nada/por/aqui")
    body = _assert_problem(unknown_path, 404)
    assert body["instance"] == "/nada/por/aqui"

    not_allowed = await client.post(f"{platform.gateway}/healthz")
    _assert_problem(not_allowed, 405)
    assert "GET" in not_allowed.headers["allow"]


async def test_unexpected_error_is_500_problem_with_request_id(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{platform.gateway}/fallo", headers={"X-Request-ID": "r-500"})

    body = _assert_problem(response, 500)
    assert response.headers["x-request-id"] == "r-500"
    assert "fallo provocado" not in body["detail"]


async def test_upstream_down_is_503_problem_with_retry_after(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    # Nothing reached the service: a retry is safe, so the answer says when (never 502/504).
    response = await client.get(
        f"{platform.gateway_down}/api/v1/caido/algo", headers=platform.auth()
    )

    body = _assert_problem(response, 503)
    assert "caido" in body["detail"]
    assert int(response.headers["retry-after"]) > 0


async def test_a_collection_url_without_trailing_slash_is_proxied(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.post(f"{platform.gateway}/api/v1/registro?x=2", headers=platform.auth())
    assert response.status_code == 200, response.text
    assert response.json()["raw_path"] == "/api/v1/registro"
    assert response.json()["query"] == "x=2"


async def test_public_paths_reach_the_service_anonymously_unless_a_token_is_required(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    public = await client.post(f"{platform.gateway}/publico/eco?x=1", content=b"hola")
    assert public.status_code == 200, public.text
    assert public.json()["raw_path"] == "/api/v1/registro/eco"
    assert public.json()["query"] == "x=1"
    assert public.json()["method"] == "POST"
    assert public.headers["x-request-id"]
    assert public.headers["ratelimit-limit"] == "10000"

    _assert_problem(await client.get(f"{platform.gateway}/privado/eco"), 401)
    with_token = await client.get(f"{platform.gateway}/privado/eco", headers=platform.auth())
    assert with_token.status_code == 200
    assert with_token.json()["raw_path"] == "/api/v1/registro/eco"

    _assert_problem(await client.get(f"{platform.gateway}/sin-servicio"), 404)
    param = await client.get(f"{platform.gateway}/con-parametro/AB12-CD34")
    assert param.status_code == 200
    assert param.json()["raw_path"] == "/api/v1/registro/eco/AB12-CD34"


async def test_anonymous_calls_get_429_after_the_limit(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    url = f"{platform.gateway_limited}/verificar/CSV-9"

    answers = [await client.get(url) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert answers[0].json() == {"csv": "CSV-9"}
    assert [r.headers["ratelimit-limit"] for r in answers] == ["3", "3", "3"]
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0"]

    refused = await client.get(url)
    _assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"

    # Failed authentication spends the same address quota.
    unauthenticated = await client.get(f"{platform.gateway_limited}/api/v1/registro/eco")
    _assert_problem(unauthenticated, 429)


async def test_a_path_with_its_own_policy_does_not_share_the_anonymous_bucket(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """The Redsys case: a bank's notifications and citizens behind one address each keep
    their quota; exhausting one leaves the other whole."""
    ciudadano = f"{platform.gateway_per_path}/ciudadano/eco"
    banco = f"{platform.gateway_per_path}/banco/eco"

    assert [(await client.get(ciudadano)).status_code for _ in range(3)] == [200] * 3
    _assert_problem(await client.get(ciudadano), 429)

    # The citizens' bucket is empty; the bank's path still has its five.
    answers = [await client.post(banco, content=b"Ds_Signature=x") for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 5
    assert [r.headers["ratelimit-limit"] for r in answers] == ["5"] * 5
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["4", "3", "2", "1", "0"]
    assert answers[0].json()["raw_path"] == "/api/v1/registro/eco"
    refused = await client.post(banco, content=b"Ds_Signature=x")
    _assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1

    # And the bank's exhausted bucket did not spend the citizens' (still refused: its own).
    assert (await client.get(ciudadano)).headers["ratelimit-limit"] == "3"


def test_redsys_notifications_have_their_own_bucket() -> None:
    """pagos declares its notification path with the Redsys policy; its other public paths
    (the payer's browser coming back) stay on the anonymous one."""
    from services.pagos.app import PUBLIC_PATHS

    por_ruta = {p.path: p for p in PUBLIC_PATHS}
    politica = por_ruta["/pagos/redsys/notificacion"].rate_limit
    assert politica is not None
    assert politica.bucket == "redsys"
    assert politica.per_minute(_settings(rate_limit_redsys_per_minute=1234)) == 1234
    assert por_ruta["/pagos/redsys/vuelta"].rate_limit is None


async def test_authenticated_calls_are_limited_per_tenant_and_subject(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    url = f"{platform.gateway_limited}/api/v1/registro/eco"
    ana = platform.auth(sub="ana-limitada")

    assert [(await client.get(url, headers=ana)).status_code for _ in range(2)] == [200, 200]
    _assert_problem(await client.get(url, headers=ana), 429)

    other_tenant = await client.get(url, headers=platform.auth(sub="ana-limitada", tenant="46250"))
    assert other_tenant.status_code == 200
    other_subject = await client.get(url, headers=platform.auth(sub="luis-limitado"))
    assert other_subject.status_code == 200


async def test_a_council_has_one_quota_over_all_its_users(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    url = f"{platform.gateway_council}/api/v1/registro/eco"
    for sub in ("ana", "luis", "marta"):
        assert (await client.get(url, headers=platform.auth(sub=sub))).status_code == 200
    refused = await client.get(url, headers=platform.auth(sub="pepa"))
    _assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    other_council = await client.get(url, headers=platform.auth(sub="pepa", tenant="46250"))
    assert other_council.status_code == 200


async def test_a_council_at_its_bound_in_flight_is_503_and_another_is_served(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    upstream = platform.upstreams["registro"]
    upstream.slow_released.clear()
    started = upstream.slow_started
    slow = f"{platform.gateway_admission}/api/v1/registro/lento"
    held = [
        asyncio.create_task(client.get(slow, headers=platform.auth(sub=sub)))
        for sub in ("ana", "luis")
    ]
    await eventually(lambda: upstream.slow_started == started + 2)
    refused = await client.get(slow, headers=platform.auth(sub="marta"))
    body = _assert_problem(refused, 503)
    assert body["reason"] == "tenant_busy"
    assert int(refused.headers["retry-after"]) >= 1
    other = await client.get(
        f"{platform.gateway_admission}/api/v1/registro/eco", headers=platform.auth(tenant="46250")
    )
    assert other.status_code == 200
    upstream.slow_released.set()
    assert [(await task).status_code for task in held] == [200, 200]


async def test_a_service_503_passes_through_with_its_retry_after(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        f"{platform.gateway}/api/v1/registro/saturado", headers=platform.auth()
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


async def test_openapi_merges_both_services(platform: Platform, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{platform.gateway}/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/registro/documentos" in spec["paths"]
    assert "/api/v1/tramitador/documentos" in spec["paths"]
    assert "/healthz" not in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    schemas = spec["components"]["schemas"]
    assert set(schemas["Documento"]["properties"]) == {"csv"}
    assert set(schemas["TramitadorDocumento"]["properties"]) == {"expediente", "fase"}
    op = spec["paths"]["/api/v1/tramitador/documentos"]["post"]
    assert op["tags"] == ["tramitador"]
    body_schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/TramitadorDocumento"}


async def test_openapi_leaves_out_a_silent_service_with_a_warning(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{platform.gateway_down}/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert "/api/v1/registro/documentos" in spec["paths"]
    assert not any(path.startswith("/api/v1/caido") for path in spec["paths"])
    assert "caido" in spec["info"]["description"]


async def test_docs_serve_swagger_ui_on_the_merged_document(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{platform.gateway}/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
    assert "swagger-ui" in response.text


async def test_readyz_follows_the_services(platform: Platform, client: httpx.AsyncClient) -> None:
    ready = await client.get(f"{platform.gateway}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "services": {"registro": "ok", "tramitador": "ok"}}

    platform.upstreams["tramitador"].ready = False
    try:
        not_ready = await client.get(f"{platform.gateway}/readyz")
    finally:
        platform.upstreams["tramitador"].ready = True

    body = _assert_problem(not_ready, 503)
    assert body["services"] == {"registro": "ok", "tramitador": "responde 503"}
    assert "tramitador" in body["detail"]

    down = await client.get(f"{platform.gateway_down}/readyz")
    assert _assert_problem(down, 503)["services"]["caido"] == "no responde"


async def test_cors_preflight_for_a_configured_origin(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    url = f"{platform.gateway}/api/v1/registro/eco"
    preflight = await client.options(
        url,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["x-request-id"]

    refused = await client.options(
        url,
        headers={"Origin": "https://malicioso.example", "Access-Control-Request-Method": "POST"},
    )
    body = _assert_problem(refused, 400)
    assert "origen" in body["detail"]
    assert "access-control-allow-origin" not in refused.headers

    simple = await client.get(url, headers={**platform.auth(), "Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    exposed = simple.headers["access-control-expose-headers"]
    for name in ("X-Request-ID", "Location", "Idempotent-Replayed", "RateLimit-Remaining"):
        assert name in exposed


async def test_large_upload_is_streamed_to_the_service(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    upstream = platform.upstreams["registro"]
    upstream.upload_started = asyncio.Event()
    blocks = [_block(i) for i in range(8)]

    async def body() -> AsyncIterator[bytes]:
        yield blocks[0]
        # A buffering gateway would wait for the whole body before calling the
        # service, so the service would never see this first block.
        await asyncio.wait_for(upstream.upload_started.wait(), 10)
        for block in blocks[1:]:
            yield block

    response = await client.post(
        f"{platform.gateway}/api/v1/registro/subida",
        headers={**platform.auth(), "Content-Length": str(8 * MIB)},
        content=body(),
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "size": 8 * MIB,
        "sha256": hashlib.sha256(b"".join(blocks)).hexdigest(),
        "content_length": str(8 * MIB),
    }


async def test_chunked_download_is_streamed_to_the_client(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    upstream = platform.upstreams["tramitador"]
    upstream.download_released = asyncio.Event()
    digest = hashlib.sha256()
    size = 0

    async with client.stream(
        "GET", f"{platform.gateway}/api/v1/tramitador/descarga", headers=platform.auth()
    ) as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        assert response.headers["x-request-id"]
        async for chunk in response.aiter_raw():
            # The service holds back the rest until the first bytes got here.
            upstream.download_released.set()
            size += len(chunk)
            digest.update(chunk)

    expected = b"".join(_block(i) for i in range(8))
    assert size == len(expected)
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()


async def test_redis_rate_limiter_shares_an_atomic_quota() -> None:
    require_server("Redis", "127.0.0.1", 6379)
    prefix = f"test:ratelimit:{uuid.uuid4().hex}:"
    redis = Redis.from_url(REDIS_URL)
    limiter = RedisRateLimiter(redis, prefix=prefix)
    try:
        decisions = [await limiter.hit("ip:1", 3, 60) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert 1 <= decisions[3].reset_seconds <= 20

        assert (await limiter.hit("ip:2", 3, 60)).allowed
        ttl = await redis.pttl(prefix + "ip:1")
        assert 0 < ttl <= 60_000

        # A second limiter on the same keys (another replica) sees the same buckets.
        other = RedisRateLimiter(redis, prefix=prefix)
        assert not (await other.hit("ip:1", 3, 60)).allowed

        concurrent = await asyncio.gather(*(limiter.hit("ip:3", 5, 60) for _ in range(20)))
        assert sum(d.allowed for d in concurrent) == 5
    finally:
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await limiter.aclose()


async def test_redis_rate_limiter_falls_back_to_memory_when_redis_is_down() -> None:
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        decisions = [await limiter.hit("ip:1", 2, 60) for _ in range(3)]
    finally:
        await limiter.aclose()

    assert [d.allowed for d in decisions] == [True, True, False]


async def test_in_process_services_need_no_socket_and_keep_the_gateway_edge(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    """With the service's app in the gateway's process, its calls reach it with no HTTP
    hop (its URL here answers nothing), still behind the gateway's token check, with the
    gateway's request id, and a crash of the service is a problem answer, not a hang."""
    keys = ensure_dev_signing_key(tmp_path)
    verifier = TokenVerifier(
        JwksKeySource(str(keys)),
        issuer="consistorio-dev",
        audience="consistorio",
        algorithms=["ES256"],
        tenant_is_active=_tenant_is_active,
    )
    service = _upstream_app(Upstream("registro"))

    @service.get("/api/v1/registro/roto")
    async def roto() -> dict[str, str]:
        raise RuntimeError("fallo provocado por la prueba")

    gateway = create_gateway(
        settings=_settings(),
        verifier=verifier,
        service_urls={"registro": f"http://127.0.0.1:{_closed_port()}"},
        service_apps={"registro": service},
    )
    token = issue_dev_token(tmp_path, tenant="03014", sub="ana", roles=["registro"])
    async with _serve(gateway) as url:
        anonymous = await client.get(f"{url}/api/v1/registro/eco")
        _assert_problem(anonymous, 401)

        answer = await client.post(
            f"{url}/api/v1/registro/eco?x=1",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "peticion-1"},
            content=b"{}",
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-request-id"] == "peticion-1"
        seen = answer.json()
        assert seen["raw_path"] == "/api/v1/registro/eco"
        assert seen["query"] == "x=1"
        assert seen["headers"]["x-request-id"] == "peticion-1"
        assert seen["headers"]["authorization"] == f"Bearer {token}"

        crashed = await client.get(
            f"{url}/api/v1/registro/roto", headers={"Authorization": f"Bearer {token}"}
        )
        assert crashed.status_code >= 500
        assert crashed.headers["x-request-id"]
