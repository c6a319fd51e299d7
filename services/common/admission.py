"""Admission control: a bounded number of requests in flight, per process and per tenant.

A process that takes every request it is offered makes all of them slow, and the
clients' and the gateway's timeouts turn the slowness into 500s and 504s after the work
may already have been done. So every app (each service and the gateway) admits at most
``max_in_flight`` requests at once, and at most ``max_per_tenant`` of one tenant, and
answers the rest at once with ``503 Service Unavailable``, ``Retry-After`` and a
problem+json body: nothing of a refused request has run, and a retry (with its
``Idempotency-Key``) is safe. The per-tenant bound is the fairness between councils: one
council's burst fills its own bound and leaves the rest of the process to the others.

The tenant is read from the bearer token's ``tenant`` claim *without* verifying it: the
middleware runs before routing, and the route verifies the token anyway. A forged token
can only hold a slot of the tenant it names for the moment it takes to be refused with
a 401. A request without a token counts as the anonymous tenant (public paths).

On shutdown :meth:`Admission.drain` makes readiness false and every new request a 503
(``shutting_down``), while the requests already admitted finish; :meth:`wait_idle`
tells when they have. Health, readiness and metrics are never refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection

import jwt
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.errors import PROBLEM_JSON
from services.common.overload import IN_FLIGHT, RefusalLog, refusals

__all__ = ["EXEMPT_PATHS", "ANONYMOUS", "Admission", "AdmissionMiddleware", "tenant_of"]

READINESS_PATH = "/readyz"
EXEMPT_PATHS = frozenset({"/healthz", READINESS_PATH, "/metrics"})
ANONYMOUS = "-"
_TYPE = "https://consistorio.es/problemas/saturado"
_MAX_TENANT_CHARS = 64


def tenant_of(scope: Scope) -> str:
    """The tenant a request claims to be of (unverified), or :data:`ANONYMOUS`."""
    for name, value in scope.get("headers", ()):
        if name != b"authorization":
            continue
        known = _claimed.get(value)
        if known is None:
            known = _claimed_tenant(value)
            if len(_claimed) >= _CLAIMED_MAX:
                _claimed.clear()
            _claimed[value] = known
        return known
    return ANONYMOUS


# The tenant each recent Authorization value claims: a client sends the same token on
# every request, and decoding it (PyJWT checks the base64 character by character) cost
# more than the rest of admission together. Bounded; emptied when full.
_claimed: dict[bytes, str] = {}
_CLAIMED_MAX = 4096


def _claimed_tenant(authorization: bytes) -> str:
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return ANONYMOUS
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return ANONYMOUS
    tenant = claims.get("tenant") if isinstance(claims, dict) else None
    return tenant[:_MAX_TENANT_CHARS] if isinstance(tenant, str) and tenant else ANONYMOUS


class Admission:
    """The in-flight counts of one app and whether it still admits anything."""

    def __init__(
        self,
        *,
        service: str,
        max_in_flight: int,
        max_per_tenant: int,
        retry_after_seconds: int = 1,
        log: RefusalLog = refusals,
    ) -> None:
        if max_in_flight < 1 or max_per_tenant < 1:
            raise ValueError("admission bounds must be at least 1")
        self.service = service
        self.max_in_flight = max_in_flight
        self.max_per_tenant = max_per_tenant
        self.retry_after_seconds = retry_after_seconds
        self.in_flight = 0
        self.per_tenant: dict[str, int] = {}
        self.draining = False
        self._log = log
        self._idle = asyncio.Event()
        self._idle.set()
        self._gauge = IN_FLIGHT.labels(service)

    def enter(self, tenant: str) -> str | None:
        """Admits one request of ``tenant``; returns why not (the refusal reason) or None."""
        reason = None
        if self.draining:
            reason = "shutting_down"
        elif self.in_flight >= self.max_in_flight:
            reason = "service_busy"
        elif self.per_tenant.get(tenant, 0) >= self.max_per_tenant:
            reason = "tenant_busy"
        if reason is not None:
            self._log.record(self.service, reason)
            return reason
        self.in_flight += 1
        self.per_tenant[tenant] = self.per_tenant.get(tenant, 0) + 1
        self._idle.clear()
        self._gauge.inc()
        return None

    def leave(self, tenant: str) -> None:
        """Releases the slot of an admitted request once it is answered (or abandoned)."""
        self.in_flight -= 1
        left = self.per_tenant.get(tenant, 1) - 1
        if left > 0:
            self.per_tenant[tenant] = left
        else:
            self.per_tenant.pop(tenant, None)
        self._gauge.dec()
        if self.in_flight == 0:
            self._idle.set()

    def drain(self) -> None:
        """From now on readiness is false and every new request is a 503."""
        self.draining = True

    async def wait_idle(self, timeout: float) -> bool:
        """Waits until no admitted request is left, at most ``timeout`` s; True if none is."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


_Headers = list[tuple[bytes, bytes]]


def _refusal(reason: str, service: str, retry_after: int) -> tuple[_Headers, bytes]:
    details = {
        "shutting_down": f"El servicio {service} se está deteniendo.",
        "service_busy": f"El servicio {service} está atendiendo todas las peticiones que admite.",
        "tenant_busy": f"El servicio {service} está atendiendo todas las peticiones que "
        "admite a la vez de esta entidad.",
    }
    body = json.dumps(
        {
            "type": _TYPE,
            "title": "Service Unavailable",
            "status": 503,
            "detail": details[reason] + f" Vuelva a intentarlo en {retry_after} s; con la "
            "misma Idempotency-Key el reintento es seguro.",
            "reason": reason,
        },
        ensure_ascii=False,
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
    ]
    return headers, body


class AdmissionMiddleware:
    """Pure ASGI: admits a request or answers 503 before anything else runs."""

    def __init__(
        self, app: ASGIApp, *, admission: Admission, exempt: Collection[str] = EXEMPT_PATHS
    ) -> None:
        self.app = app
        self.admission = admission
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.exempt:
            if scope["path"] == READINESS_PATH and self.admission.draining:
                # First step of a graceful stop: the load balancer takes this replica
                # out while the requests it already admitted finish.
                await self._refuse(send, "shutting_down")
                return
            await self.app(scope, receive, send)
            return
        tenant = tenant_of(scope)
        reason = self.admission.enter(tenant)
        if reason is not None:
            await self._refuse(send, reason)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.leave(tenant)

    async def _refuse(self, send: Send, reason: str) -> None:
        retry = self.admission.retry_after_seconds
        headers, body = _refusal(reason, self.admission.service, retry)
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
