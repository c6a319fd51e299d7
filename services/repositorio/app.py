"""The repositorio service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.public_paths import PublicPath
from services.common.runtime import ServiceRuntime
from services.repositorio import handlers
from services.repositorio.api import router
from services.repositorio.emision import api as emision_api
from services.repositorio.emision import reconciliacion
from services.repositorio.emision.metrics import emision_gauges
from services.repositorio.storage import BlobStore, build_blob_store

# What this service's document workers run: imported as each worker starts.
DOCUMENT_MODULES = ("services.repositorio.emision.service",)

NAME = "repositorio"
# The gateway routes /api/v1/documentos/... here (the resource, not the service name).
ROUTES = ("documentos",)

# The issued PDF a CSV names, for anyone holding the code. The gateway forwards a public
# path to /api/v1/<route segment>/<upstream>, and reaches this service by its segment.
PUBLIC_PATHS = (
    PublicPath(
        "/verificar/{csv}/documento",
        "documentos",
        "verificar/{csv}/documento",
        counts_misses=True,
    ),
)


def create_app(
    runtime: ServiceRuntime, *, manage_runtime: bool = True, blob_store: BlobStore | None = None
) -> FastAPI:
    """Builds the repositorio app around its wired runtime and a blob store.

    The store comes from the settings (S3 or files) unless one is given, as
    tests do to look behind its back. The bus consumers use the app's store,
    looked up when each event arrives, so a store swapped on the app is theirs too.
    """
    app = create_service_app(
        runtime,
        title="Consistorio · repositorio",
        description="Repositorio de documentos electrónicos con metadatos ENI "
        "(NTI de Documento electrónico), versiones, descarga por rangos y emisión con "
        "código seguro de verificación (CSV) y sello de órgano.",
        routers=[emision_api.public_router, router, emision_api.router],
        manage_runtime=manage_runtime,
        gauges=emision_gauges(runtime),
    )
    app.state.blob_store = blob_store or build_blob_store(runtime.settings)

    def store() -> BlobStore:
        current: BlobStore = app.state.blob_store
        return current

    runtime.consumers = handlers.consumers(store, runtime.settings, runtime.document_workers)
    for escaner in reconciliacion.ESCANERES:
        runtime.reconciler.register(escaner)
    return app
