"""The registro service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.runtime import ServiceRuntime
from services.registro import handlers
from services.registro.anexos.api import LimiteCuerpo
from services.registro.anexos.domain import Limites, max_cuerpo
from services.registro.asientos.api import router
from services.registro.intercambios.api import router as intercambios_router
from services.registro.justificantes.api import router as justificantes_router
from services.registro.justificantes.metrics import justificante_gauges
from services.registro.libro.api import router as libro_router
from services.registro.oficinas.api import router as oficinas_router
from services.registro.reconciliacion import escaneres
from services.registro.representaciones.api import router as representaciones_router
from services.registro.sellos_tiempo.api import router as sello_tiempo_router

# What this service's document workers run: imported as each worker starts.
DOCUMENT_MODULES = ("services.registro.justificantes.pdf",)

NAME = "registro"


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the registro app around its wired runtime."""
    runtime.consumers = handlers.consumers(runtime.document_workers)
    app = create_service_app(
        runtime,
        title="Consistorio · registro",
        description="Registro electrónico de entrada y salida (Ley 39/2015, art. 16).",
        routers=[
            router,
            justificantes_router,
            intercambios_router,
            libro_router,
            oficinas_router,
            sello_tiempo_router,
            representaciones_router,
        ],
        manage_runtime=manage_runtime,
        gauges=justificante_gauges(runtime),
    )
    for escaner in escaneres(runtime.document_workers):
        runtime.reconciler.register(escaner)
    # An asiento carries its anexos inline: a body that cannot fit them is refused unread.
    app.add_middleware(
        LimiteCuerpo,
        method="POST",
        path="/api/v1/registro/asientos",
        max_bytes=max_cuerpo(Limites.de(runtime.settings)),
    )
    return app
