"""The shape every service app shares: problem+json errors, health, telemetry, lifespan.

A service's ``create_app(runtime)`` calls :func:`create_service_app` with its
routers; starting the app starts the outbox relay and the bus consumers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from services.common.errors import install_problem_handlers, problem_response
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
            if manage_runtime:
                await runtime.stop()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.runtime = runtime
    install_problem_handlers(app)

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
    install_metrics(app, service=runtime.name, db=runtime.db, tables=runtime.tables, gauges=gauges)
    instrument_app(app)
    return app
