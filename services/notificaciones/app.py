"""The notificaciones app: binding notifications of the council's acts (Ley 39/2015, art. 40-46).

Building the app puts its clock on the app state (the system clock; tests put a
controlled one there) and, when the app manages its runtime, starts the expiry
scheduler and the avisos sender with it: every replica runs both, and each
notification expires once and each aviso leaves at most once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.runtime import ServiceRuntime
from services.notificaciones import api, handlers
from services.notificaciones.avisos import Avisador
from services.notificaciones.canales import AltiriaSms, SmtpEmail
from services.notificaciones.clock import SystemClock
from services.notificaciones.settings import AvisosSettings
from services.notificaciones.vencimientos import Vencedor

# What this service's document workers run: imported as each worker starts.
DOCUMENT_MODULES = ("services.notificaciones.acuses", "services.notificaciones.impresos")

NAME = "notificaciones"


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the notificaciones app around its runtime, with its clock and scheduler."""
    if runtime.tenants is not None:
        # The consumers read the app's clock when they run: tests may replace it.
        runtime.consumers = handlers.consumers(
            runtime.tenants, lambda: app.state.clock, runtime.document_workers
        )
    app = create_service_app(
        runtime,
        title="Consistorio · notificaciones",
        description="Notificaciones electrónicas y en papel con sus efectos legales (Ley "
        "39/2015, arts. 40-46): puesta a disposición, acceso, rechazo, expiración a los "
        "diez días, intentos de entrega postal y publicación en el BOE.",
        routers=[api.router],
        manage_runtime=manage_runtime,
    )
    app.state.clock = SystemClock()
    app.state.vencedor = Vencedor(runtime, app.state.clock)
    avisos = AvisosSettings()
    app.state.avisador = Avisador(
        runtime,
        app.state.clock,
        avisos,
        email=SmtpEmail(avisos),
        sms=AltiriaSms(avisos) if avisos.sms_url else None,
    )
    if manage_runtime:
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
            async with inner(app) as state:
                app.state.vencedor.start()
                app.state.avisador.start()
                try:
                    yield state
                finally:
                    await app.state.avisador.stop()
                    await app.state.vencedor.stop()

        app.router.lifespan_context = lifespan
    return app
