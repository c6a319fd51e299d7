"""The pagos service app: liquidaciones, Cuaderno 60 references and card payments via Redsys."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.public_paths import PublicPath
from services.common.runtime import ServiceRuntime
from services.pagos import api

NAME = "pagos"

# Redsys posts the outcome of a card payment here, without any account: the
# signature with the council's merchant key is the credential.
PUBLIC_PATHS = (
    PublicPath("/pagos/redsys/notificacion", NAME, "redsys/notificacion", methods=("POST",)),
)


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the pagos app around its runtime."""
    return create_service_app(
        runtime,
        title="Consistorio · pagos",
        description="Liquidaciones y autoliquidaciones, referencias de Cuaderno 60, pago con "
        "tarjeta por Redsys (HMAC_SHA256_V1) y conciliación.",
        routers=[api.router],
        manage_runtime=manage_runtime,
    )
