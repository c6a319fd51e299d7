"""The tramitador service app: its features' routes and the plazo scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.runtime import ServiceRuntime
from services.tramitador import handlers
from services.tramitador.bandeja.api import router as bandeja_router
from services.tramitador.calendario.api import router as calendario_router
from services.tramitador.eni.api import router as eni_router
from services.tramitador.expedientes.api import router as expedientes_router
from services.tramitador.expedientes.scheduler import Programador
from services.tramitador.procedimientos.api import router as procedimientos_router

# What this service's document workers run: imported as each worker starts.
DOCUMENT_MODULES = ("services.tramitador.documentos.domain",)

NAME = "tramitador"


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the tramitador app around its wired runtime; serving it runs the scheduler."""
    runtime.consumers = handlers.consumers(runtime.document_workers)
    app = create_service_app(
        runtime,
        title="Consistorio · tramitador",
        description="Expedientes, catálogo de procedimientos y cómputo de plazos.",
        routers=[
            expedientes_router,
            eni_router,
            bandeja_router,
            procedimientos_router,
            calendario_router,
        ],
        manage_runtime=manage_runtime,
    )
    programador = Programador(runtime)
    app.state.programador = programador
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            programador.start()
            try:
                yield
            finally:
                await programador.stop()

    app.router.lifespan_context = lifespan
    return app
