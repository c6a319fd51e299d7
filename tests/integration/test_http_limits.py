"""HTTP serving limits over real sockets, as ``consistorio up`` and ``serve`` configure
uvicorn: oversized or too many headers (431), a head or trailer fields that keep
growing (cut off by their size, long before any timeout), slow headers (on a kept-alive
connection too) and slow bodies (408), a malformed request (400),
client addresses from X-Forwarded-For only behind a trusted proxy, a service's early
413 passed on by the gateway (never a 502), the gateway's own body cap, and one miss
allowance for every public path that looks a CSV up."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import uvloop
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.app import create_gateway
from services.common.auth import JwksKeySource, TokenVerifier
from services.common.devkeys import ensure_dev_signing_key, issue_dev_token
from services.common.errors import install_problem_handlers, problem_response
from services.common.http_server import RequestLimitsMiddleware, server_config
from services.common.public_paths import PublicPath
from services.common.settings import Settings
from tests.support.gateway_settings import settings_for_tests
from tests.support.serving import serving

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def serve(app: Any, settings: Settings, trusted: list[str] | None = None) -> Any:
    return serving(app, settings, trusted_proxies=trusted)


def _settings(**overrides: Any) -> Settings:
    specific: dict[str, Any] = {
        "http_max_header_bytes": 8192,
        "http_max_headers": 50,
        "http_header_timeout_seconds": 0.5,
        "http_body_timeout_seconds": 0.5,
        "verificar_misses_per_minute": 3,
    }
    return settings_for_tests(**(specific | overrides))


def _service_app(settings: Settings) -> FastAPI:
    """A service as the kernel shapes one: problem handlers and the request limits."""
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(
        RequestLimitsMiddleware,
        max_headers=settings.http_max_headers,
        max_header_bytes=settings.http_max_header_bytes,
        body_timeout_seconds=settings.http_body_timeout_seconds,
    )
    router = APIRouter(prefix="/api/v1/registro")

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        return {"client": request.client.host if request.client else None}

    @router.post("/eco")
    async def eco(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @router.post("/asientos")
    async def asientos(request: Request) -> JSONResponse:
        # As the registro does: refused from Content-Length, body unread, and closing.
        if int(request.headers.get("content-length", "0")) > MIB:
            return problem_response(413, "Los anexos no caben.", headers={"Connection": "close"})
        return JSONResponse({"size": len(await request.body())}, status_code=201)

    @router.get("/verificar/{csv}")
    async def verificar(csv: str) -> JSONResponse:
        if csv == "BUENO":
            return JSONResponse({"csv": csv})
        return problem_response(404, "No existe.")

    @router.get("/verificar/{csv}/documento")
    async def documento(csv: str) -> JSONResponse:
        return problem_response(404, "No existe.")

    app.include_router(router)
    return app


async def _raw(host: str, port: int, data: bytes, *, then_wait: bool = False) -> bytes:
    """Sends ``data`` on a fresh connection and reads until the server closes it."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


async def test_headers_too_large_or_too_many_are_431() -> None:
    settings = _settings()
    async with serve(_service_app(settings), settings) as (host, port):
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n"
        answer = await _raw(host, port, big)
        assert _status(answer) == 431
        assert PROBLEM.encode() in answer
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            many = {f"X-Cabecera-{i}": "1" for i in range(80)}
            refused = await client.get("/healthz", headers=many)
            assert refused.status_code == 431
            assert refused.headers["content-type"] == PROBLEM
            ok = await client.get("/healthz", headers={"X-Normal": "a" * 1000})
            assert ok.status_code == 200


async def test_slow_headers_and_slow_bodies_are_408() -> None:
    settings = _settings()
    async with serve(_service_app(settings), settings) as (host, port):
        # Headers that never end: answered 408 and closed, instead of held forever.
        answer = await _raw(host, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Lento: 1")
        assert _status(answer) == 408
        assert PROBLEM.encode() in answer
        # A body that stops arriving.
        head = b"POST /api/v1/registro/eco HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        answer = await _raw(host, port, head + b"0123456789")
        assert _status(answer) == 408
        assert PROBLEM.encode() in answer


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Reads one answer framed by Content-Length; its status and body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return _status(head), await asyncio.wait_for(reader.readexactly(length), 20)


async def test_a_head_that_keeps_growing_is_431_before_its_timeout() -> None:
    # The timeout is far off: only the server's count of the head's bytes can answer.
    settings = _settings(http_header_timeout_seconds=60)
    async with serve(_service_app(settings), settings) as (host, port):
        for unfinished in (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Sin-Fin: " + b"a" * 12 * 1024,
            b"GET /healthz?q=" + b"a" * 12 * 1024,
        ):
            answer = await _raw(host, port, unfinished)
            assert _status(answer) == 431
            assert PROBLEM.encode() in answer
        # Sent in pieces, each read counts; the ninth piece passes the 8 KiB (and is
        # the last, so that the server has read everything when it answers and closes).
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for i in range(9):
                writer.write(b"X-Trozo-%d: %s\r\n" % (i, b"a" * 1000))
                await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 20)
        finally:
            writer.close()
        assert _status(answer) == 431


async def test_trailers_that_keep_growing_are_cut_off() -> None:
    # Trailer fields after a chunked body are held like header fields: bounded alike.
    settings = _settings(http_header_timeout_seconds=60, http_body_timeout_seconds=60)
    body_arrived = asyncio.Event()
    app = FastAPI()

    @app.post("/trozos")
    async def trozos(request: Request) -> dict[str, int]:
        size = 0
        async for piece in request.stream():
            size += len(piece)
            body_arrived.set()
        return {"size": size}

    async with serve(app, settings) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                b"POST /trozos HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\nX-Cola: "
            )
            await asyncio.wait_for(body_arrived.wait(), 20)
            for _ in range(3):
                writer.write(b"a" * 4096)
                await writer.drain()
            # Hung up with no answer: the request's own may already be on its way.
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()


async def test_idle_malformed_and_kept_alive_connections_stay_bounded() -> None:
    settings = _settings()
    async with serve(_service_app(settings), settings) as (host, port):
        # A connection that never sends a byte is closed, with nothing to answer.
        assert await _raw(host, port, b"") == b""
        # A request the parser refuses is a 400 problem.
        answer = await _raw(host, port, b"NO ES HTTP\r\n\r\n")
        assert _status(answer) == 400
        assert PROBLEM.encode() in answer
        # On a kept-alive connection, pipelined requests are answered in turn, and the
        # head of the next one is timed again: left unfinished, it is a 408.
        reader, writer = await asyncio.open_connection(host, port)
        try:
            get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            writer.write(get + get + b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Lento: 1")
            for _ in range(2):
                status, body = await _answer(reader)
                assert status == 200, body
            status, body = await _answer(reader)
            assert status == 408
            assert b"peticion-lenta" in body
            assert await asyncio.wait_for(reader.read(), 20) == b""
        finally:
            writer.close()


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_accepted_connections_send_without_delay(loop_kind: str) -> None:
    """A kept-alive client's next request must not wait on Nagle's algorithm: the server
    turns it off on every connection it accepts, on asyncio's loop (which leaves it on
    for a socket made without IPPROTO_TCP, as the runner's are) and on uvloop's."""
    settings = _settings()

    async def accepted_nodelay() -> list[int]:
        server = uvicorn.Server(server_config(_service_app(settings), settings))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            async with httpx.AsyncClient() as client:
                url = f"http://127.0.0.1:{sock.getsockname()[1]}/healthz"
                assert (await client.get(url)).status_code == 200
                return [
                    protocol.transport.get_extra_info("socket").getsockopt(
                        socket.IPPROTO_TCP, socket.TCP_NODELAY
                    )
                    for protocol in server.server_state.connections
                ]
        finally:
            server.should_exit = True
            await task
            sock.close()

    factory = uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        flags = runner.run(accepted_nodelay())
    assert flags and all(flags), flags


async def test_forwarded_for_only_from_trusted_proxies() -> None:
    settings = _settings()
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    async with serve(_service_app(settings), settings) as (host, port):
        async with httpx.AsyncClient() as client:
            seen = (await client.get(f"http://{host}:{port}/healthz", headers=spoof)).json()
        assert seen["client"] == "127.0.0.1"  # not even loopback is trusted by default
    trusting = _settings(forwarded_allow_ips="127.0.0.1")
    async with serve(_service_app(trusting), trusting) as (host, port):
        async with httpx.AsyncClient() as client:
            seen = (await client.get(f"http://{host}:{port}/healthz", headers=spoof)).json()
        assert seen["client"] == "203.0.113.9"


@pytest.fixture
def verifier(tmp_path: Path) -> TokenVerifier:
    async def active(tenant: str) -> bool:
        return True

    return TokenVerifier(
        JwksKeySource(str(ensure_dev_signing_key(tmp_path))),
        issuer="consistorio-dev",
        audience="consistorio",
        algorithms=["ES256"],
        tenant_is_active=active,
    )


@contextlib.asynccontextmanager
async def gateway_platform(
    verifier: TokenVerifier, *, in_process: bool = False, **overrides: Any
) -> AsyncIterator[tuple[str, str]]:
    settings = _settings(**overrides)
    service = _service_app(settings)
    async with serve(service, settings) as (host, port):
        gateway = create_gateway(
            settings=settings,
            verifier=verifier,
            service_urls={"registro": f"http://{host}:{port}"},
            service_apps={"registro": service} if in_process else None,
            public_paths=(
                PublicPath("/verificar/{csv}", "registro", "verificar/{csv}", counts_misses=True),
                PublicPath(
                    "/verificar/{csv}/documento",
                    "registro",
                    "verificar/{csv}/documento",
                    counts_misses=True,
                ),
            ),
        )
        async with serve(gateway, settings) as (ghost, gport):
            yield f"http://{ghost}:{gport}", f"http://{host}:{port}"


@pytest.mark.parametrize("in_process", [False, True], ids=["http", "inprocess"])
async def test_gateway_passes_the_service_413_on_and_caps_bodies(
    verifier: TokenVerifier, tmp_path: Path, in_process: bool
) -> None:
    token = issue_dev_token(tmp_path, tenant="03014", sub="ana", roles=["registro"])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        gateway_platform(verifier, in_process=in_process, gateway_max_body_bytes=16 * MIB) as (
            gateway,
            _,
        ),
        httpx.AsyncClient(base_url=gateway, timeout=60) as client,
    ):
        for _ in range(3):
            answer = await client.post(
                "/api/v1/registro/asientos", content=b"x" * 8 * MIB, headers=headers
            )
            assert answer.status_code == 413, answer.text
            assert answer.json()["detail"] == "Los anexos no caben."
        capped = await client.post(
            "/api/v1/registro/asientos", content=b"x" * 17 * MIB, headers=headers
        )
        assert capped.status_code == 413
        assert capped.headers["content-type"] == PROBLEM
        assert "16777216" in capped.json()["detail"]

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(17):
                yield b"x" * MIB

        # No Content-Length: the count of what arrives is what stops it.
        streamed = await client.post("/api/v1/registro/eco", content=chunked(), headers=headers)
        assert streamed.status_code == 413, streamed.text
        assert streamed.headers["content-type"] == PROBLEM
        assert "16777216" in streamed.json()["detail"]
        small = await client.post("/api/v1/registro/asientos", content=b"{}", headers=headers)
        assert small.status_code == 201
        # A Latin-1 octet in a header is relayed as is, not a 500 of the gateway.
        rare = await client.post(
            "/api/v1/registro/eco", content=b"{}", headers={**headers, "X-Rara": b"caf\xe9\x84"}
        )
        assert rare.status_code == 200, rare.text


@pytest.mark.parametrize("in_process", [False, True], ids=["http", "inprocess"])
async def test_one_miss_allowance_for_every_csv_lookup(
    verifier: TokenVerifier, in_process: bool
) -> None:
    async with (
        gateway_platform(verifier, in_process=in_process) as (gateway, _),
        httpx.AsyncClient(base_url=gateway) as client,
    ):
        assert (await client.get("/verificar/NOEXISTE1")).status_code == 404
        assert (await client.get("/verificar/NOEXISTE2/documento")).status_code == 404
        assert (await client.get("/verificar/NOEXISTE3/documento")).status_code == 404
        for path in ("/verificar/NOEXISTE4", "/verificar/NOEXISTE5/documento"):
            refused = await client.get(path)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            assert refused.headers["content-type"] == PROBLEM
