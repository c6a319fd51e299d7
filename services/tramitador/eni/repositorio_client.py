"""The tramitador's HTTP client of the repositorio: a document's recorded version and bytes.

The foliado records the digest and ENI metadata the repositorio holds for a version,
and the export streams its bytes. Both are read as the caller, forwarding their
bearer token: the repositorio then checks the tenant and the role ``documentos``
itself, so the tramitador never reads a document its user could not.

Where the repositorio is: ``app.state.eni_repositorio_client`` when something put a
client there (tests, with a transport onto the in-process app); else the URL of the
``documentos`` route in ``app.state.service_urls`` or ``SERVICE_URLS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Request

from services.common.errors import Conflict, Forbidden, ProblemError
from services.common.repositorio_http import (
    RUTA,
    RepositorioHttp,
    RepositorioNoDisponible,
    cliente_de,
    get_como_llamante,
)

__all__ = ["RUTA", "RepositorioClient", "RepositorioNoDisponible", "repositorio_de"]

CHUNK = 64 * 1024


class RespuestaInesperada(ProblemError):
    """502: the repositorio answered something the tramitador cannot use."""

    status = 502
    slug = "repositorio-respuesta-inesperada"


def _refusal(response: httpx.Response, documento_id: str) -> ProblemError:
    if response.status_code in (401, 403):
        return Forbidden(
            f"El repositorio no deja leer el documento {documento_id}: hace falta también el "
            "rol 'documentos'."
        )
    if response.status_code == 404:
        return Conflict(f"El documento {documento_id} no está en el repositorio.")
    return RespuestaInesperada(
        f"El repositorio respondió {response.status_code} al pedir el documento {documento_id}."
    )


class RepositorioClient(RepositorioHttp):
    """Reads documents' versions and content from the repositorio, as the caller."""

    async def version_actual(self, documento_id: str, token: str) -> dict[str, Any]:
        """The current version of a documento as recorded: digest, size, ENI metadata."""
        async with self.client() as client:
            response = await get_como_llamante(
                client,
                f"/api/v1/{RUTA}/{documento_id}",
                token,
                fallo="No se pudo consultar el repositorio",
            )
        if response.status_code != 200:
            raise _refusal(response, documento_id)
        body = response.json()
        version: dict[str, Any] = dict(body["version_actual"])
        version["documento_id"] = body["id"]
        return version

    def contenido(
        self, client: httpx.AsyncClient, documento_id: str, version: int, token: str
    ) -> AsyncIterator[bytes]:
        """The bytes of one version, in chunks as they arrive."""
        path = f"/api/v1/{RUTA}/{documento_id}/versiones/{version}/contenido"
        return _stream(client, path, documento_id, headers={"Authorization": f"Bearer {token}"})

    def publico(self, client: httpx.AsyncClient, csv: str) -> AsyncIterator[bytes]:
        """An issued document's bytes from its public verification address (no token):
        what anybody holding the CSV may download, as a citizen gets a notified one."""
        return _stream(client, f"/api/v1/{RUTA}/verificar/{csv}/documento", csv)


async def _stream(
    client: httpx.AsyncClient, path: str, ref: str, *, headers: dict[str, str] | None = None
) -> AsyncIterator[bytes]:
    """GETs ``path`` in chunks as they arrive: a refusal is the repositorio's problem, a
    failed connection a 503 naming ``ref`` (the document or CSV asked for)."""
    try:
        async with client.stream("GET", path, headers=headers) as response:
            if response.status_code != 200:
                raise _refusal(response, ref)
            async for chunk in response.aiter_bytes(CHUNK):
                yield chunk
    except httpx.HTTPError as exc:
        raise RepositorioNoDisponible(
            f"No se pudo leer el documento {ref}: {exc.__class__.__name__}.",
            headers={"Retry-After": "5"},
        ) from exc


def repositorio_de(request: Request) -> RepositorioClient:
    """The repositorio client of the request's app; 503 when it has no address."""
    return cliente_de(request, RepositorioClient, "eni_repositorio_client")
