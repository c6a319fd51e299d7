"""Reading the repositorio over HTTP as the caller: what every service's client of it shares.

The registro (anexos of a SICRES export), the tramitador (foliado and ENI export) and
notificaciones (the document to notify) read documents the repositorio holds. Each asks
as the caller, forwarding the caller's bearer token, so the repositorio checks the tenant
and the role ``documentos`` itself and no service reads a document its user could not.
What they share is kept here: where the repositorio is (a client a test put on
``app.state``, else the URL of the ``documentos`` route in ``app.state.service_urls``,
bound by ``consistorio up``, or ``SERVICE_URLS``), the HTTP client onto it, and the 503
when it cannot be reached. What each does with the answer (which refusals mean what to
its own users) stays in the service.
"""

from __future__ import annotations

from typing import TypeVar

import httpx
from fastapi import Request

from services.common.errors import ProblemError

__all__ = ["RUTA", "RepositorioHttp", "RepositorioNoDisponible", "cliente_de", "get_como_llamante"]

# The gateway route segment the repositorio serves (its URL in service_urls).
RUTA = "documentos"


class RepositorioNoDisponible(ProblemError):
    """503: the repositorio cannot be reached (or its address is not configured)."""

    status = 503
    slug = "repositorio-no-disponible"


class RepositorioHttp:
    """A client of the repositorio at ``base_url`` (``transport``: tests' in-process app)."""

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

    def client(self) -> httpx.AsyncClient:
        """An HTTP client for one batch of calls (close it when they are done)."""
        return httpx.AsyncClient(
            base_url=self.base_url, transport=self._transport, timeout=self._timeout
        )


async def get_como_llamante(
    client: httpx.AsyncClient, path: str, token: str, *, fallo: str
) -> httpx.Response:
    """GETs ``path`` with the caller's bearer token; a failed connection is a 503 whose
    detail is ``fallo`` and the error's kind (any answer, a refusal too, is returned)."""
    try:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise RepositorioNoDisponible(
            f"{fallo}: {exc.__class__.__name__}.", headers={"Retry-After": "5"}
        ) from exc


C = TypeVar("C", bound=RepositorioHttp)


def cliente_de(request: Request, cls: type[C], state_attr: str) -> C:
    """The request's app's client of the repositorio: the one at ``app.state.<state_attr>``
    if something put it there, else a ``cls`` onto the configured URL; 503 without one."""
    state = request.app.state
    client: C | None = getattr(state, state_attr, None)
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
    return cls(base_url, timeout=settings.proxy_timeout_seconds)
