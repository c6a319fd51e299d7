"""The csv service app: Códigos Seguros de Verificación and their public verification.

Building the app adds the bus consumers (they need the tenant directory and the
public address from the runtime) and the per-process miss limiter of the
public pages.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.misses import MissLimiter
from services.common.public_paths import PublicPath
from services.common.runtime import ServiceRuntime
from services.csv import api, handlers

NAME = "csv"

# Anyone holding a document's code verifies it, without an account.
PUBLIC_PATHS = (
    PublicPath("/verificar", NAME, "verificar"),
    PublicPath("/verificar/{csv}", NAME, "verificar/{csv}", counts_misses=True),
)


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the csv app around its runtime, with its consumers and miss limiter."""
    if runtime.tenants is not None:
        runtime.consumers = handlers.consumers(runtime.tenants, runtime.settings)
    app = create_service_app(
        runtime,
        title="Consistorio · csv",
        description="Códigos seguros de verificación (CSV): reserva para cada documento "
        "emitido y verificación pública de su autenticidad.",
        routers=[api.router],
        manage_runtime=manage_runtime,
    )
    app.state.csv_misses = MissLimiter(runtime.settings.verificar_misses_per_minute)
    return app
