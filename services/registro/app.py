"""The registro service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.runtime import ServiceRuntime
from services.registro.api import router
from services.registro.intercambios_api import router as intercambios_router
from services.registro.libro_api import router as libro_router

NAME = "registro"


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the registro app around its wired runtime."""
    return create_service_app(
        runtime,
        title="Consistorio · registro",
        description="Registro electrónico de entrada y salida (Ley 39/2015, art. 16).",
        routers=[router, intercambios_router, libro_router],
        manage_runtime=manage_runtime,
    )
