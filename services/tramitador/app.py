"""The tramitador service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.runtime import ServiceRuntime
from services.tramitador.calendario.api import router as calendario_router
from services.tramitador.expedientes.api import router as expedientes_router

NAME = "tramitador"


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the tramitador app around its wired runtime."""
    return create_service_app(
        runtime,
        title="Consistorio · tramitador",
        description="Expedientes, catálogo de procedimientos y cómputo de plazos.",
        routers=[expedientes_router, calendario_router],
        manage_runtime=manage_runtime,
    )
