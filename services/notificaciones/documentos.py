"""How notificaciones learns that the document to notify exists: it asks the repositorio.

Staff create a notification over HTTP, so the check is made over HTTP too, before
anything is written, as the caller (forwarding their bearer token): the repositorio
checks tenant and role ``documentos`` itself, and nobody notifies a document they
could not read. A document that does not exist is a 422 naming ``documento_id``;
a repositorio that cannot be reached is a 503: in both cases nothing is written.
The answer pins the version notified, which the notification keeps as evidence.

Where the repositorio is: ``app.state.documentos_client`` when something put a
client there (tests, onto the in-process app); else the URL of the ``documentos``
route in ``app.state.service_urls`` or ``SERVICE_URLS``.
"""

from __future__ import annotations

from fastapi import Request

from services.common.errors import FieldError, Forbidden, Unprocessable
from services.common.repositorio_http import (
    RUTA,
    RepositorioHttp,
    RepositorioNoDisponible,
    cliente_de,
    get_como_llamante,
)
from services.notificaciones.schemas import DocumentoNotificado

__all__ = ["RUTA", "DocumentosClient", "RepositorioNoDisponible", "documentos_de"]


class DocumentosClient(RepositorioHttp):
    """Looks a documento up in the repositorio, as the caller."""

    async def consultar(self, documento_id: str, token: str) -> DocumentoNotificado:
        """The documento's current version; 422, 403 or 503 problems when it cannot be used."""
        async with self.client() as client:
            response = await get_como_llamante(
                client,
                f"/api/v1/{RUTA}/{documento_id}",
                token,
                fallo="No se pudo consultar el documento en el repositorio",
            )
        if response.status_code == 200:
            body = response.json()
            actual = body["version_actual"]
            return DocumentoNotificado(
                documento_id=str(body["id"]),
                version=int(actual["version"]),
                nombre=actual["nombre"],
                csv=body.get("csv"),
                url_verificacion=body.get("url_verificacion"),
            )
        if response.status_code == 404:
            raise Unprocessable(
                f"El documento {documento_id} no existe en el repositorio de la entidad.",
                errors=[FieldError("documento_id", "el documento no existe")],
            )
        if response.status_code in (401, 403):
            raise Forbidden("Para notificar un documento hay que poder leerlo: rol 'documentos'.")
        raise RepositorioNoDisponible(
            f"El repositorio respondió {response.status_code} al consultar el documento."
        )


def documentos_de(request: Request) -> DocumentosClient:
    """The repositorio client of the request's app; 503 when it has no address."""
    return cliente_de(request, DocumentosClient, "documentos_client")
