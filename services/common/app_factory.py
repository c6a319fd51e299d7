"""The shape every service app shares: problem+json errors, health, telemetry, lifespan.

A service's ``create_app(runtime)`` calls :func:`create_service_app` with its
routers; starting the app starts the outbox relay and the bus consumers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from services.common.admission import Admission, AdmissionMiddleware
from services.common.cpu import CpuPool
from services.common.errors import document_problems, install_problem_handlers, problem_response
from services.common.http_server import RequestLimitsMiddleware
from services.common.inputs import document_input_rules, refuse_unsafe_input
from services.common.metrics import GaugeQuery, install_metrics
from services.common.runtime import ServiceRuntime
from services.common.telemetry import instrument_app

__all__ = ["create_service_app"]


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    manage_runtime: bool = True,
    gauges: Sequence[GaugeQuery] = (),
) -> FastAPI:
    """Builds the FastAPI app of one service around its runtime (``gauges``: its own metrics)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            app.state.cpu.close()
            if manage_runtime:
                await runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        # Every route of every service refuses control characters and oversized
        # integers in one place (see services.common.inputs).
        dependencies=[Depends(refuse_unsafe_input)],
    )
    app.state.runtime = runtime
    # Worker processes for CPU-heavy work, started on first use (see services.common.cpu).
    app.state.cpu = CpuPool(
        workers=runtime.settings.cpu_workers, per_tenant=runtime.settings.cpu_jobs_per_tenant
    )
    install_problem_handlers(app)
    app.state.service_name = runtime.name
    # Inside the request limits (an early 503 keeps its connection, as a 413 does).
    app.state.admission = Admission(
        service=runtime.name,
        max_in_flight=runtime.settings.admission_max_in_flight,
        max_per_tenant=runtime.settings.admission_max_in_flight_per_tenant,
        retry_after_seconds=runtime.settings.admission_retry_after_seconds,
    )
    app.add_middleware(AdmissionMiddleware, admission=app.state.admission)
    app.add_middleware(
        RequestLimitsMiddleware,
        max_headers=runtime.settings.http_max_headers,
        max_header_bytes=runtime.settings.http_max_header_bytes,
        body_timeout_seconds=runtime.settings.http_body_timeout_seconds,
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {
            "database": await runtime.db.ping(),
            "bus": await runtime.transport.ping(),
        }
        if all(checks.values()):
            return JSONResponse({"status": "ready", "service": runtime.name, "checks": checks})
        failing = ", ".join(k for k, ok in checks.items() if not ok)
        return problem_response(503, f"{runtime.name} no está listo: falla {failing}")

    for router in routers:
        app.include_router(router)
    install_metrics(
        app,
        service=runtime.name,
        db=runtime.db,
        tables=runtime.tables,
        gauges=[*gauges, _document_jobs(runtime)],
    )
    _document_inputs(app)
    instrument_app(app)
    return app


def _document_jobs(runtime: ServiceRuntime) -> GaugeQuery:
    """The backlog of the process's document workers (shared by the services of ``up``)."""

    async def read() -> dict[tuple[str, ...], float]:
        return {(): float(runtime.document_workers.pending)}

    return GaugeQuery(
        "consistorio_document_jobs",
        "Document jobs (render, stamp, seal, PDF check) handed to this process's document "
        "workers and not finished, running or waiting.",
        (),
        read,
    )


def _document_inputs(app: FastAPI) -> None:
    """Makes the app's OpenAPI document state the input rules the kernel enforces."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(document_input_rules(generate()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
