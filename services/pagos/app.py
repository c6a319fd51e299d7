"""The pagos service app: liquidaciones, Cuaderno 60 references and card payments via Redsys.

When the app manages its runtime it runs the vencimiento scheduler (every replica one;
services/pagos/vencimientos.py). In development it also serves the Redsys simulator,
so ``make dev`` runs the whole card flow without a bank.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.public_paths import PublicPath, RateLimitPolicy
from services.common.runtime import ServiceRuntime
from services.pagos import api, claves, handlers
from services.pagos.settings import PagosSettings
from services.pagos.simulador import router_simulador
from services.pagos.vencimientos import Vencedor

# What this service's document workers run: imported as each worker starts.
DOCUMENT_MODULES = ("services.pagos.cartas",)

NAME = "pagos"

# Redsys posts the outcome of a card payment here, without any account: the
# signature with the council's merchant key is the credential.
PUBLIC_PATHS = (
    # Its own rate-limit bucket: a bank's notifications must not queue behind citizens.
    PublicPath(
        "/pagos/redsys/notificacion",
        NAME,
        "redsys/notificacion",
        methods=("POST",),
        rate_limit=RateLimitPolicy("redsys", lambda s: s.rate_limit_redsys_per_minute),
    ),
    # Where Redsys sends the payer's browser back (signed; shows the stored state).
    PublicPath("/pagos/redsys/vuelta", NAME, "redsys/vuelta"),
    # The Redsys simulator's pages, served only in development (404 elsewhere).
    *(
        PublicPath(f"/simulador-redsys/sis/{p}", NAME, f"simulador-redsys/sis/{p}", ("POST",))
        for p in ("realizarPago", "confirmar")
    ),
)


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the pagos app around its runtime, with its document consumers.

    Production refuses to start without a key-encryption key for the Redsys merchant
    keys (PAGOS_KEKS or PAGOS_KEKS_FILE): :func:`claves.llavero_de` raises.
    """
    ajustes = PagosSettings()
    claves.instalar(claves.llavero_de(ajustes, runtime.settings.environment))
    if runtime.tenants is not None:
        runtime.consumers = handlers.consumers(runtime.tenants, runtime.document_workers)
    app = create_service_app(
        runtime,
        title="Consistorio · pagos",
        description="Liquidaciones y autoliquidaciones, referencias de Cuaderno 60, pago con "
        "tarjeta por Redsys (HMAC_SHA256_V1) y conciliación.",
        routers=[api.router],
        manage_runtime=manage_runtime,
    )
    app.state.vencedor = Vencedor(
        runtime,
        lote=ajustes.vencimientos_lote,
        intervalo_segundos=ajustes.vencimientos_intervalo_segundos,
    )
    if manage_runtime:
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
            async with inner(app) as state:
                app.state.vencedor.start()
                try:
                    yield state
                finally:
                    await app.state.vencedor.stop()

        app.router.lifespan_context = lifespan
    if runtime.settings.environment == "development":
        # `make dev` pays against a stand-in for Redsys' page: configure a tenant's Redsys
        # URL as <public base URL>/simulador-redsys/sis/realizarPago (docs/pagos.md).
        app.include_router(router_simulador(), prefix=f"{api.PREFIX}/simulador-redsys")
        app.state.redsys_cliente = None
    return app
