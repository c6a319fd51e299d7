"""The gateway's hop to services in other processes, against services that misbehave.

The gateway runs on uvicorn as ``consistorio serve gateway`` serves it; behind it are
real sockets: raw TCP servers that answer late, never, half, or not HTTP at all, and
a FastAPI service for the cases that need a real one. What is asserted is what a client
of the gateway sees (status, problem+json, request id) and what reached the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.app import create_gateway
from services.common.auth import JwksKeySource, TokenVerifier
from services.common.devkeys import ensure_dev_signing_key, issue_dev_token
from services.common.settings import Settings
from tests.support.gateway_settings import settings_for_tests
from tests.support.serving import serving

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
KIB = 1024


@dataclass
class RawService:
    """A TCP server that reads each request head and lets ``answer`` do the rest."""

    answer: Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.heads.append(head)
                if not await self.answer(head, reader, writer):
                    return
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def raw_service(
    answer: Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]],
) -> AsyncIterator[tuple[RawService, str]]:
    service = RawService(answer)
    server = await asyncio.start_server(service.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield service, f"http://127.0.0.1:{port}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def _settings(**overrides: Any) -> Settings:
    specific: dict[str, Any] = {
        "proxy_timeout_seconds": 0.5,
        "proxy_connect_timeout_seconds": 0.5,
    }
    return settings_for_tests(**(specific | overrides))


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    ensure_dev_signing_key(tmp_path)
    return tmp_path


@contextlib.asynccontextmanager
async def gateway_to(keys: Path, url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in front of ``url`` (as the registro), and a client with a token."""

    async def active(tenant: str) -> bool:
        return True

    verifier = TokenVerifier(
        JwksKeySource(str(ensure_dev_signing_key(keys))),
        issuer="consistorio-dev",
        audience="consistorio",
        algorithms=["ES256"],
        tenant_is_active=active,
    )
    settings = _settings(**overrides)
    gateway = create_gateway(settings=settings, verifier=verifier, service_urls={"registro": url})
    token = issue_dev_token(keys, tenant="03014", sub="ana", roles=["registro"])
    async with (
        serving(gateway, settings) as (host, port),
        httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            trust_env=False,
        ) as client,
    ):
        yield client


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    return body


def _ok(body: bytes = b'{"ok":true}', *, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


async def test_a_silent_service_is_504_problem_and_got_the_request_id(keys: Path) -> None:
    async def never(head: bytes, reader: Any, writer: Any) -> bool:
        await asyncio.sleep(30)
        return False

    async with raw_service(never) as (service, url), gateway_to(keys, url) as client:
        response = await client.get("/api/v1/registro/asientos", headers={"X-Request-ID": "r-504"})

    body = _problem(response, 504)
    assert "Idempotency-Key" in body["detail"]
    assert response.headers["x-request-id"] == "r-504"
    # It did reach the service, with the gateway's request id: hence a 504, not a 503.
    assert len(service.heads) == 1
    assert b"\r\nx-request-id: r-504\r\n" in service.heads[0].lower()
    assert service.heads[0].startswith(b"GET /api/v1/registro/asientos HTTP/1.1\r\n")


async def test_a_service_that_closes_without_answering_is_502_problem(keys: Path) -> None:
    async def hang_up(head: bytes, reader: Any, writer: Any) -> bool:
        return False

    async with raw_service(hang_up) as (service, url), gateway_to(keys, url) as client:
        response = await client.post("/api/v1/registro/asientos", content=b"{}")

    _problem(response, 502)
    assert response.headers["x-request-id"]
    assert len(service.heads) == 1


async def test_an_answer_that_is_not_http_is_502_problem(keys: Path) -> None:
    async def garbage(head: bytes, reader: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)
        return False

    async with raw_service(garbage) as (_, url), gateway_to(keys, url) as client:
        response = await client.get("/api/v1/registro/asientos")

    _problem(response, 502)


async def test_a_refused_connection_is_503_problem_with_retry_after(keys: Path) -> None:
    async def hang_up(head: bytes, reader: Any, writer: Any) -> bool:
        return False

    async with raw_service(hang_up) as (_, url):
        pass  # closed: its port now refuses connections
    async with gateway_to(keys, url) as client:
        response = await client.get("/api/v1/registro/asientos")

    body = _problem(response, 503)
    assert "registro" in body["detail"]
    assert int(response.headers["retry-after"]) > 0


async def test_a_body_that_stalls_midway_aborts_the_client_connection(keys: Path) -> None:
    async def half(head: bytes, reader: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 100)
        await writer.drain()
        await asyncio.sleep(30)
        return False

    async with raw_service(half) as (_, url), gateway_to(keys, url) as client:
        # The status went out with the first bytes; a truncated body must not look whole.
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/api/v1/registro/documento")


async def test_connections_are_reused_and_one_closed_by_the_service_is_replaced(
    keys: Path,
) -> None:
    closing = asyncio.Event()

    async def keep_alive(head: bytes, reader: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok())
        await writer.drain()
        return not closing.is_set()  # when set, this connection closes after the answer

    async with raw_service(keep_alive) as (service, url), gateway_to(keys, url) as client:
        for _ in range(5):
            assert (await client.get("/api/v1/registro/eco")).status_code == 200
        assert service.connections == 1
        closing.set()
        assert (await client.get("/api/v1/registro/eco")).status_code == 200
        await asyncio.sleep(0.1)  # the service has closed the connection the gateway kept
        closing.clear()
        assert (await client.get("/api/v1/registro/eco")).status_code == 200
        assert service.connections == 2


async def test_head_answers_have_no_body_and_the_next_call_is_served(keys: Path) -> None:
    async def answer(head: bytes, reader: Any, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"HEAD "):
            # As a server answers HEAD: the GET's Content-Length, no body.
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n")
        else:
            writer.write(_ok())
        await writer.drain()
        return True

    async with raw_service(answer) as (_, url), gateway_to(keys, url) as client:
        head = await client.head("/api/v1/registro/documento")
        assert head.status_code == 200
        assert head.headers["content-length"] == "5000"
        assert head.content == b""
        after = await client.get("/api/v1/registro/eco")
        assert after.json() == {"ok": True}


def _counting_service() -> tuple[FastAPI, dict[str, Any]]:
    seen: dict[str, Any] = {"sizes": [], "completed": 0}
    app = FastAPI()

    @app.post("/api/v1/registro/subida")
    async def subida(request: Request) -> Response:
        size = 0
        digest = hashlib.sha256()
        seen["sizes"].append(0)
        async for chunk in request.stream():
            size += len(chunk)
            digest.update(chunk)
            seen["sizes"][-1] = size
        seen["completed"] += 1
        return Response(f"{size} {digest.hexdigest()}", media_type="text/plain")

    return app, seen


async def test_a_streamed_upload_over_the_limit_is_413_and_never_whole_at_the_service(
    keys: Path,
) -> None:
    app, seen = _counting_service()
    settings = _settings()
    limit = 256 * KIB

    async def chunks(total: int) -> AsyncIterator[bytes]:
        for _ in range(total // (16 * KIB)):
            yield b"y" * (16 * KIB)
            await asyncio.sleep(0)

    async with (
        serving(app, settings) as (host, port),
        gateway_to(keys, f"http://{host}:{port}", gateway_max_body_bytes=limit) as client,
    ):
        # Chunked (no Content-Length): only counting what arrives can stop it.
        refused = await client.post("/api/v1/registro/subida", content=chunks(4 * limit))
        body = _problem(refused, 413)
        assert str(limit) in body["detail"]
        assert refused.headers["x-request-id"]
        within = await client.post("/api/v1/registro/subida", content=chunks(limit))
        assert within.status_code == 200, within.text
        expected = hashlib.sha256(b"y" * limit).hexdigest()
        assert within.text == f"{limit} {expected}"
    # The refused body was streamed to the service until the limit, and not past it.
    assert seen["completed"] == 1
    assert seen["sizes"][0] <= limit


async def test_a_service_answering_before_the_upload_ends_is_relayed(keys: Path) -> None:
    async def early(head: bytes, reader: asyncio.StreamReader, writer: Any) -> bool:
        # Answers at once, then reads and discards the body as a server does.
        writer.write(
            b"HTTP/1.1 413 Content Too Large\r\ncontent-type: application/problem+json\r\n"
            b'content-length: 14\r\n\r\n{"status":413}'
        )
        await writer.drain()
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        return True

    async with raw_service(early) as (service, url), gateway_to(keys, url) as client:
        for _ in range(2):
            response = await client.post("/api/v1/registro/asientos", content=b"z" * 1024 * KIB)
            assert response.status_code == 413
            assert response.json() == {"status": 413}
        assert service.connections <= 2


async def test_the_trace_continues_across_the_hop(keys: Path) -> None:
    async def answer(head: bytes, reader: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok())
        await writer.drain()
        return True

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = f"00-{trace_id}-00f067aa0ba902b7-01"
    async with raw_service(answer) as (service, url), gateway_to(keys, url) as client:
        response = await client.get("/api/v1/registro/eco", headers={"traceparent": incoming})
    assert response.status_code == 200
    lines = service.heads[0].lower().split(b"\r\n")
    sent = [line for line in lines if line.startswith(b"traceparent:")]
    # One traceparent, of the client's trace (the gateway's span, or the client's own).
    assert len(sent) == 1
    assert sent[0].split(b"-")[1].decode() == trace_id


async def test_a_service_url_with_a_path_prefixes_it_and_an_empty_body_is_framed(
    keys: Path,
) -> None:
    async def answer(head: bytes, reader: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok())
        await writer.drain()
        return True

    async with raw_service(answer) as (service, url), gateway_to(keys, url + "/interno/") as client:
        empty = await client.post("/api/v1/registro/eco?x=1", content=b"")
        bare = await client.request("DELETE", "/api/v1/registro/eco")
    assert (empty.status_code, bare.status_code) == (200, 200)
    post, delete = (head.lower() for head in service.heads)
    assert post.startswith(b"post /interno/api/v1/registro/eco?x=1 http/1.1\r\n")
    assert b"\r\ncontent-length: 0\r\n" in post
    # Sent whole: the service read no body it was not told of, and the next call came.
    assert delete.startswith(b"delete /interno/api/v1/registro/eco http/1.1\r\n")
    assert b"content-length" not in delete and b"transfer-encoding" not in delete


@pytest.mark.parametrize(("method", "status", "seen"), [("GET", 200, 3), ("POST", 502, 2)])
async def test_a_request_lost_with_its_connection_is_sent_again_only_if_idempotent(
    keys: Path, method: str, status: int, seen: int
) -> None:
    answered: dict[int, int] = {}

    async def second_is_lost(head: bytes, reader: Any, writer: asyncio.StreamWriter) -> bool:
        if b"content-length: " in head.lower():
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        key = id(writer)
        answered[key] = answered.get(key, 0) + 1
        if answered[key] == 2:
            return False  # read, then the connection dies: did the service act on it?
        writer.write(_ok())
        await writer.drain()
        return True

    async with raw_service(second_is_lost) as (service, url), gateway_to(keys, url) as client:
        first = await client.request(method, "/api/v1/registro/eco", content=b"{}")
        assert first.status_code == 200
        second = await client.request(method, "/api/v1/registro/eco", content=b"{}")
    assert second.status_code == status, second.text
    # A POST is never sent twice: the service may have registered it already.
    assert len(service.heads) == seen


async def test_a_client_that_stops_reading_holds_the_service_back(keys: Path) -> None:
    from fastapi.responses import StreamingResponse

    produced = 0
    app = FastAPI()
    mib = 1024 * KIB

    @app.get("/api/v1/registro/grande")
    async def grande() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            nonlocal produced
            for _ in range(64):
                produced += mib
                yield b"g" * mib

        return StreamingResponse(body(), media_type="application/octet-stream")

    settings = _settings(proxy_timeout_seconds=10)
    async with (
        serving(app, settings) as (host, port),
        gateway_to(keys, f"http://{host}:{port}", proxy_timeout_seconds=10) as client,
        client.stream("GET", "/api/v1/registro/grande") as response,
    ):
        chunks = response.aiter_raw()
        await anext(chunks)
        await asyncio.sleep(1.0)
        # Sockets' buffers hold some; a gateway reading on regardless would hold it all.
        assert produced < 32 * mib
        received = len(b"".join([c async for c in chunks]))
    assert produced == 64 * mib
    assert received > 60 * mib
