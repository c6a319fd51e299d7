"""The registro's HTTP client of the repositorio: the bytes of an asiento's anexos.

The SICRES export carries each anexo's content, which only the repositorio holds.
The registro asks for it as the caller, forwarding the caller's bearer token: the
repositorio then checks the tenant and the role ``documentos`` itself, and the
registro never reads documents its user could not.

Where the repositorio is: ``app.state.repositorio_client`` when something put a
client there (tests, with a transport onto the in-process app); else the URL of the
``documentos`` route, from ``app.state.service_urls`` (``consistorio up`` binds
the services' ports at start) or from ``SERVICE_URLS`` (``consistorio serve``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

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
from services.registro.anexos.schemas import AnexoRead

__all__ = [
    "RUTA",
    "RepositorioClient",
    "RepositorioNoDisponible",
    "RespuestaInesperada",
    "repositorio_de",
]


class RespuestaInesperada(ProblemError):
    """502: the repositorio answered something the registro cannot use."""

    status = 502
    slug = "repositorio-respuesta-inesperada"


class RepositorioClient(RepositorioHttp):
    """Reads documents' content from the repositorio, as the caller."""

    async def contenido(self, documento_id: str, version: int, token: str) -> bytes:
        """The bytes of one version of a documento (problems as :meth:`contenidos` says)."""
        async with self.client() as client:
            return await self._get(client, documento_id, version, token, documento_id)

    async def contenidos(self, anexos: Sequence[AnexoRead], token: str) -> list[bytes | None]:
        """Each anexo's bytes, in order; None for one that came without content.

        Each is checked against the anexo's SHA-256. The repositorio's refusal
        becomes a clear problem: 403 (the caller lacks the role ``documentos``),
        409 (the documento is not stored yet, or is missing), 502 (content that
        does not match), 503 (the repositorio cannot be reached).
        """
        out: list[bytes | None] = []
        async with self.client() as client:
            for anexo in anexos:
                if anexo.documento_id is None:
                    out.append(None)
                    continue
                data = await self._get(
                    client, anexo.documento_id, anexo.version or 1, token, anexo.nombre
                )
                if anexo.sha256 is not None and hashlib.sha256(data).hexdigest() != anexo.sha256:
                    raise RespuestaInesperada(
                        f"El contenido del anexo {anexo.nombre} en el repositorio no coincide "
                        "con su SHA-256."
                    )
                out.append(data)
        return out

    async def _get(
        self, client: httpx.AsyncClient, documento_id: str, version: int, token: str, nombre: str
    ) -> bytes:
        path = f"/api/v1/{RUTA}/{documento_id}/versiones/{version}/contenido"
        response = await get_como_llamante(
            client, path, token, fallo=f"No se pudo leer el anexo {nombre} del repositorio"
        )
        if response.status_code == 200:
            return response.content
        if response.status_code in (401, 403):
            raise Forbidden(
                f"El repositorio no deja leer el anexo {nombre}: exportarlo pide también el "
                "rol 'documentos'."
            )
        if response.status_code == 404:
            raise Conflict(
                f"El anexo {nombre} (documento {documento_id}) no está en el repositorio: aún "
                "se está guardando, o no se pudo guardar. Vuelva a intentarlo en unos segundos."
            )
        raise RespuestaInesperada(
            f"El repositorio respondió {response.status_code} al pedir el anexo {nombre}."
        )


def repositorio_de(request: Request) -> RepositorioClient:
    """The repositorio client of the request's app; 503 when it has no address.

    Looked up only when anexos are to be read, so a registro without a repositorio
    still exports asientos that have none.
    """
    return cliente_de(request, RepositorioClient, "repositorio_client")
