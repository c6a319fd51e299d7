"""Admission control's rules without a server: bounds, reasons, exempt paths, draining,
and refusals logged once per burst."""

from __future__ import annotations

import asyncio
import logging

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.common.admission import ANONYMOUS, Admission, AdmissionMiddleware, tenant_of
from services.common.overload import REFUSED, RefusalLog


def _token(tenant: str) -> str:
    # Unsigned as far as admission cares: it reads the claim, the route verifies.
    return jwt.encode({"tenant": tenant, "sub": "ana"}, "x" * 32, algorithm="HS256")


def _scope(authorization: str | None) -> dict[str, object]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return {"type": "http", "path": "/x", "headers": headers}


class _Quiet(RefusalLog):
    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger("test.admission"))


def test_the_tenant_is_the_tokens_claim_and_anything_else_is_anonymous() -> None:
    assert tenant_of(_scope(f"Bearer {_token('03014')}")) == "03014"
    assert tenant_of(_scope(None)) == ANONYMOUS
    assert tenant_of(_scope("Bearer not-a-jwt")) == ANONYMOUS
    assert tenant_of(_scope("Basic abc")) == ANONYMOUS


def test_bounds_per_process_and_per_tenant_with_their_reasons() -> None:
    admission = Admission(service="s", max_in_flight=3, max_per_tenant=2, log=_Quiet())
    assert admission.enter("a") is None
    assert admission.enter("a") is None
    assert admission.enter("a") == "tenant_busy"
    assert admission.enter("b") is None
    assert admission.enter("c") == "service_busy"
    admission.leave("a")
    assert admission.enter("c") is None
    admission.drain()
    assert admission.enter("d") == "shutting_down"
    for tenant in ("a", "b", "c"):
        admission.leave(tenant)
    assert admission.in_flight == 0 and admission.per_tenant == {}


async def test_wait_idle_says_whether_the_admitted_requests_finished() -> None:
    admission = Admission(service="s", max_in_flight=3, max_per_tenant=3, log=_Quiet())
    assert await admission.wait_idle(0.01)
    admission.enter("a")
    assert not await admission.wait_idle(0.01)
    asyncio.get_running_loop().call_later(0.01, admission.leave, "a")
    assert await admission.wait_idle(5)


def _app(admission: Admission, gate: asyncio.Event) -> AdmissionMiddleware:
    async def slow(request: Request) -> PlainTextResponse:
        await gate.wait()
        return PlainTextResponse("hecho")

    async def ready(request: Request) -> PlainTextResponse:
        return PlainTextResponse("listo")

    inner = Starlette(routes=[Route("/slow", slow), Route("/readyz", ready)])
    return AdmissionMiddleware(inner, admission=admission)


async def test_beyond_the_bound_an_immediate_503_problem_with_retry_after() -> None:
    admission = Admission(
        service="s", max_in_flight=1, max_per_tenant=1, retry_after_seconds=3, log=_Quiet()
    )
    gate = asyncio.Event()
    transport = httpx.ASGITransport(app=_app(admission, gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        held = asyncio.create_task(client.get("/slow"))
        while admission.in_flight == 0:
            await asyncio.sleep(0)
        refused = await client.get("/slow")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["reason"] == "service_busy"
        # Readiness is never refused for being busy...
        assert (await client.get("/readyz")).status_code == 200
        admission.drain()
        # ...only once the process is stopping.
        assert (await client.get("/readyz")).status_code == 503
        gate.set()
        assert (await held).text == "hecho"


def test_refusals_are_counted_each_and_logged_once_per_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    log = RefusalLog(every_seconds=10, logger=logging.getLogger("test.burst"), clock=lambda: now[0])
    before = REFUSED.labels("burst", "tenant_busy")._value.get()
    with caplog.at_level(logging.WARNING, logger="test.burst"):
        for _ in range(500):
            log.record("burst", "tenant_busy")
            now[0] += 0.01
        assert len(caplog.records) == 1  # the start of the burst, at once
        now[0] += 10
        log.record("burst", "tenant_busy")
    assert len(caplog.records) == 2
    assert "500 more requests refused" in caplog.records[1].getMessage()
    assert REFUSED.labels("burst", "tenant_busy")._value.get() - before == 501
