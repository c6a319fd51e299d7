"""FastAPI dependencies shared by every service, defined once as ``Annotated`` aliases.

``RuntimeDep`` gives the service's wired runtime; ``PrincipalDep`` verifies the
bearer token again (services never trust the gateway's headers alone);
``require_role`` refuses a caller without the role in its tenant (403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from services.common.auth import Principal, bearer_token
from services.common.errors import Forbidden
from services.common.runtime import ServiceRuntime
from services.common.uow import Actor

__all__ = [
    "IdempotencyKeyDep",
    "PrincipalDep",
    "RuntimeDep",
    "actor_of",
    "require_any_role",
    "require_role",
]


async def get_runtime(request: Request) -> ServiceRuntime:
    """The runtime the composition root put on the app state."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_principal(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The verified caller of this request (401 when absent or invalid)."""
    return await runtime.verifier.verify(bearer_token(authorization))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(role: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only callers holding ``role`` (or ``admin``)."""

    async def _check(principal: PrincipalDep) -> Principal:
        if not principal.has_role(role):
            raise Forbidden(f"Se necesita el rol '{role}' en la entidad {principal.tenant}.")
        return principal

    return _check


def require_any_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through callers holding any of ``roles`` (or ``admin``)."""

    async def _check(principal: PrincipalDep) -> Principal:
        if not any(principal.has_role(role) for role in roles):
            nombres = " o ".join(f"'{r}'" for r in roles)
            raise Forbidden(f"Se necesita el rol {nombres} en la entidad {principal.tenant}.")
        return principal

    return _check


IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Clave única del cliente: un reintento con la misma clave devuelve la "
        "primera respuesta sin crear nada nuevo, así que repetir tras cualquier 5xx o un corte "
        "de red es seguro.",
    ),
]


def actor_of(request: Request, principal: Principal) -> Actor:
    """The audit actor of an HTTP request: subject, client address and request id.

    The address is the connection's: the server takes it from X-Forwarded-For only
    when the peer is a trusted proxy (services.common.http_server), never from a
    header anyone can write.
    """
    client_ip = request.client.host if request.client else None
    return Actor(
        sub=principal.sub,
        name=principal.name,
        client_ip=client_ip,
        request_id=request.headers.get("x-request-id"),
    )
