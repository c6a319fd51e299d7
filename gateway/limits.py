"""The gateway's overload answers: admission per tenant, and honest upstream failures.

Kept apart from the proxy so that how requests are routed and how load is shed change
independently:

* :func:`install_admission` puts the kernel's admission control
  (``services.common.admission``) in front of every upstream: at most
  ``GATEWAY_MAX_IN_FLIGHT`` requests at once, ``GATEWAY_MAX_IN_FLIGHT_PER_TENANT`` of
  one council, the rest an immediate 503 with ``Retry-After``.
* :func:`upstream_timeout`: connecting to a service (or waiting for a pooled
  connection to it) is bounded by ``PROXY_CONNECT_TIMEOUT_SECONDS``; only an upstream
  that accepted the request and then stays silent for ``PROXY_TIMEOUT_SECONDS`` is a 504.
* :class:`UpstreamUnavailableError`: a service that cannot be reached (refused, or no
  connection in time) is a 503 with ``Retry-After``: nothing reached it, so a retry is
  safe. A service's own 503 passes through with its ``Retry-After`` untouched.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.admission import Admission, AdmissionMiddleware
from services.common.errors import ProblemError
from services.common.overload import refusals
from services.common.settings import Settings

__all__ = [
    "UPSTREAM_RETRY_AFTER_SECONDS",
    "UpstreamUnavailableError",
    "install_admission",
    "upstream_timeout",
]

# What a 503 for an unreachable service asks the client to wait.
UPSTREAM_RETRY_AFTER_SECONDS = 2


class UpstreamUnavailableError(ProblemError):
    """The service could not be reached; nothing was sent to it (503, Retry-After)."""

    status = 503
    slug = "servicio-no-disponible"

    def __init__(self, service: str) -> None:
        refusals.record("gateway", "upstream_unavailable")
        super().__init__(
            f"No se puede contactar con el servicio '{service}' ahora: vuelva a intentarlo "
            f"en {UPSTREAM_RETRY_AFTER_SECONDS} s.",
            headers={"Retry-After": str(UPSTREAM_RETRY_AFTER_SECONDS)},
        )


def upstream_timeout(settings: Settings) -> httpx.Timeout:
    """Short waits for a connection, the long one only for a service's answer."""
    connect = min(settings.proxy_connect_timeout_seconds, settings.proxy_timeout_seconds)
    return httpx.Timeout(settings.proxy_timeout_seconds, connect=connect, pool=connect)


def install_admission(app: FastAPI, settings: Settings) -> Admission:
    """Adds admission control to the gateway (call before the outer middlewares)."""
    admission = Admission(
        service="gateway",
        max_in_flight=settings.gateway_max_in_flight,
        max_per_tenant=settings.gateway_max_in_flight_per_tenant,
        retry_after_seconds=settings.admission_retry_after_seconds,
    )
    app.state.admission = admission
    app.state.service_name = "gateway"
    app.add_middleware(AdmissionMiddleware, admission=admission)
    return admission
