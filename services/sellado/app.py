"""The sellado service app: time-stamping authority, seals and their verification.

Building the app wires the trust material (development PKI or PKCS#12 keys, and
the TSA with serials from this service's database) into ``app.state.sellado``
and adds the seal-command consumer, which needs those same keys.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.misses import MissLimiter
from services.common.public_paths import PublicPath
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.sellado import api, handlers, tsa_api, verification_api
from services.sellado.trust import build_trust

# What this service's document workers run: imported as each worker starts.
DOCUMENT_MODULES = ("services.sellado.trust",)

NAME = "sellado"


def _tsa_needs_token(settings: Settings) -> bool:
    return settings.tsa_require_token


# RFC 3161 clients and verifiers need these without an account.
PUBLIC_PATHS = (
    PublicPath("/tsa", NAME, "tsa", methods=("POST",), token_required=_tsa_needs_token),
    PublicPath("/tsa/chain.pem", NAME, "tsa/chain.pem"),
    PublicPath("/pki/ca.pem", NAME, "pki/ca.pem"),
)


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """Builds the sellado app around its runtime, with its keys and TSA attached."""
    trust = build_trust(runtime.settings, runtime.db, runtime.document_workers)
    if runtime.tenants is not None:
        runtime.consumers = handlers.consumers(
            trust, runtime.tenants, max_bytes=runtime.settings.sellado_max_pdf_bytes
        )
    app = create_service_app(
        runtime,
        title="Consistorio · sellado",
        description="Sellos electrónicos de órgano (PAdES) y sellado de tiempo (RFC 3161).",
        routers=[api.router, verification_api.router],
        manage_runtime=manage_runtime,
    )
    app.include_router(tsa_api.router, prefix=f"/api/v1/{NAME}")
    app.state.sellado = trust
    app.state.verificaciones = MissLimiter(runtime.settings.sellado_verificaciones_per_minute)
    return app
