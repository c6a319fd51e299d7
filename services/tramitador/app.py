"""The tramitador service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.runtime import ServiceRuntime
from services.tramitador.api import router

NAME = "tramitador"


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the tramitador app around its wired runtime."""
    return create_service_app(
        runtime,
        title="Consistorio · tramitador",
        description="Expedientes y catálogo de procedimientos.",
        routers=[router],
        manage_runtime=manage_runtime,
    )
