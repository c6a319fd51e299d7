"""The repositorio service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app_factory import create_service_app
from services.common.runtime import ServiceRuntime
from services.repositorio.api import router
from services.repositorio.storage import BlobStore, build_blob_store

NAME = "repositorio"


def create_app(
    runtime: ServiceRuntime, *, manage_runtime: bool = True, blob_store: BlobStore | None = None
) -> FastAPI:
    """Builds the repositorio app around its wired runtime and a blob store.

    The store comes from the settings (S3 or files) unless one is given, as
    tests do to look behind its back.
    """
    app = create_service_app(
        runtime,
        title="Consistorio · repositorio",
        description="Repositorio de documentos electrónicos con metadatos ENI "
        "(NTI de Documento electrónico), versiones y descarga por rangos.",
        routers=[router],
        manage_runtime=manage_runtime,
    )
    app.state.blob_store = blob_store or build_blob_store(runtime.settings)
    return app
