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
from services.registro.anexos.schemas import AnexoRead

__all__ = [
    "RUTA",
    "RepositorioClient",
    "RepositorioNoDisponible",
    "RespuestaInesperada",
    "repositorio_de",
]

# The gateway route segment the repositorio serves (its URL in service_urls).
RUTA = "documentos"


class RepositorioNoDisponible(ProblemError):
    """503: the repositorio cannot be reached (or its address is not configured)."""

    status = 503
    slug = "repositorio-no-disponible"


class RespuestaInesperada(ProblemError):
    """502: the repositorio answered something the registro cannot use."""

    status = 502
    slug = "repositorio-respuesta-inesperada"


class RepositorioClient:
    """Reads documents' content from the repositorio, as the caller."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._transport = transport
        self._timeout = timeout

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, transport=self._transport, timeout=self._timeout
        )

    async def contenido(self, documento_id: str, version: int, token: str) -> bytes:
        """The bytes of one version of a documento (problems as :meth:`contenidos` says)."""
        async with self._client() as client:
            return await self._get(client, documento_id, version, token, documento_id)

    async def contenidos(self, anexos: Sequence[AnexoRead], token: str) -> list[bytes | None]:
        """Each anexo's bytes, in order; None for one that came without content.

        Each is checked against the anexo's SHA-256. The repositorio's refusal
        becomes a clear problem: 403 (the caller lacks the role ``documentos``),
        409 (the documento is not stored yet, or is missing), 502 (content that
        does not match), 503 (the repositorio cannot be reached).
        """
        out: list[bytes | None] = []
        async with self._client() as client:
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
        try:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise RepositorioNoDisponible(
                f"No se pudo leer el anexo {nombre} del repositorio: {exc.__class__.__name__}.",
                headers={"Retry-After": "5"},
            ) from exc
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
    state = request.app.state
    client: RepositorioClient | None = getattr(state, "repositorio_client", None)
    if client is not None:
        return client
    settings = state.runtime.settings
    urls: dict[str, str] = getattr(state, "service_urls", None) or settings.service_urls
    base_url = urls.get(RUTA)
    if not base_url:
        raise RepositorioNoDisponible(
            "No se conoce la dirección del repositorio: configure SERVICE_URLS con la ruta "
            f"'{RUTA}'."
        )
    return RepositorioClient(base_url, timeout=settings.proxy_timeout_seconds)
