"""One OpenAPI document for the whole public API, built from each service's own.

Clients see a single API behind the gateway, so its description must be one
document too. :func:`merge_openapi` is pure (testable without servers);
:class:`MergedOpenApi` fetches the services' documents and caches the result.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from services.common.errors import document_problems

__all__ = ["BEARER_SCHEME", "MergedOpenApi", "merge_openapi"]

_log = logging.getLogger("consistorio.gateway.openapi")

BEARER_SCHEME = "bearerAuth"
_BEARER_DEFINITION = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "Token JWT del proveedor de identidad; la pasarela lo verifica y lo reenvía.",
}
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_DESCRIPTION = (
    "API pública de Consistorio: las operaciones de todos los servicios, servidas por la pasarela."
    "\n\n**Envíe siempre una cabecera `Idempotency-Key` (un UUID nuevo por operación) en los "
    "POST que crean algo.** Así es seguro repetir la petición tras cualquier 5xx o un corte de "
    "red: si la operación llegó a completarse, la misma clave devuelve la respuesta guardada "
    "(`Idempotent-Replayed: true`) sin crear nada nuevo. Sin clave, un reintento crea otra vez."
    "\n\nCon carga excesiva la plataforma rechaza pronto, nunca dejando una petición esperar "
    "hasta agotar un plazo: un `503` con `Retry-After` (la entidad o el servicio tienen todas "
    "las peticiones que admiten a la vez, o el servicio se está deteniendo) significa que no se "
    "ha hecho nada; vuelva a intentarlo pasados esos segundos. Un `429` es la cuota por minuto "
    "del usuario o de la entidad. Un `504` solo llega si un servicio aceptó la petición y dejó "
    "de responder: la operación puede haberse completado, repítala con la misma clave."
    "\n\nLímites comunes: cabeceras de hasta 16 KiB y 100 campos (431), cuerpos que llegan "
    "sin pausas largas (408), enteros entre -2147483648 y 2147483647 y textos sin caracteres "
    "de control salvo tabulador y salto de línea (422 nombrando el campo)."
)

Spec = dict[str, Any]
_GATEWAY_PROBLEMS = (401, 429, 502, 503, 504)
_Renames = dict[tuple[str, str], str]


def _pascal(service: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", service))


def _renamed_ref(ref: str, renames: _Renames) -> str:
    if not ref.startswith("#/components/"):
        return ref
    parts = ref.split("/")
    if len(parts) < 4:
        return ref
    new = renames.get((parts[2], parts[3]))
    if new is None:
        return ref
    return "/".join([*parts[:3], new, *parts[4:]])


def _rewrite_refs(node: Any, renames: _Renames) -> Any:
    """A copy of ``node`` whose local component references follow ``renames``."""
    if not renames:
        return node
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = _renamed_ref(value, renames)
        elif key == "discriminator" and isinstance(value, dict):
            # Discriminator mappings name schemas by reference without "$ref".
            mapping = value.get("mapping")
            out[key] = dict(value)
            if isinstance(mapping, dict):
                out[key]["mapping"] = {
                    k: _renamed_ref(v, renames) if isinstance(v, str) else v
                    for k, v in mapping.items()
                }
        else:
            out[key] = _rewrite_refs(value, renames)
    return out


def _sections(components: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(components, dict):
        return {}
    return {name: items for name, items in components.items() if isinstance(items, dict)}


def _plan_renames(service: str, incoming: Spec, merged: dict[str, dict[str, Any]]) -> _Renames:
    """Which of ``service``'s components clash with different ones already merged.

    Renaming one schema changes the content of every schema that refers to it,
    which may create new clashes, so this repeats until nothing changes.
    """
    sections = _sections(incoming.get("components"))
    renames: _Renames = {}
    changed = True
    while changed:
        changed = False
        for section, items in sections.items():
            existing = merged.get(section, {})
            for name, value in items.items():
                if (section, name) in renames or name not in existing:
                    continue
                if existing[name] == _rewrite_refs(value, renames):
                    continue
                taken = set(existing) | set(items)
                taken |= {new for (sec, _), new in renames.items() if sec == section}
                candidate = base = _pascal(service) + name[:1].upper() + name[1:]
                counter = 2
                while candidate in taken:
                    candidate = f"{base}{counter}"
                    counter += 1
                renames[(section, name)] = candidate
                changed = True
    return renames


def _rename_security(requirements: Any, renames: _Renames) -> Any:
    # Security requirements name schemes by key, not by $ref.
    if not isinstance(requirements, list):
        return requirements
    return [
        {renames.get(("securitySchemes", k), k): v for k, v in req.items()}
        if isinstance(req, dict)
        else req
        for req in requirements
    ]


def merge_openapi(specs: dict[str, Spec], *, title: str, version: str) -> Spec:
    """Merges the services' OpenAPI documents (keyed by service name) into one.

    Only paths under ``/api/v1/<service>`` are kept: nothing else is reachable
    through the gateway, and it keeps services from describing each other's
    paths, so no two operations can clash. Untagged operations get the service name as
    tag. Components with equal names and content are shared; a later service's
    differing component becomes ``<Service><Name>`` and its references follow.
    A ``bearerAuth`` JWT scheme is required globally.
    """
    components: dict[str, dict[str, Any]] = {
        "schemas": {},
        "securitySchemes": {BEARER_SCHEME: dict(_BEARER_DEFINITION)},
    }
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()

    for service, original in specs.items():
        renames = _plan_renames(service, original, components)
        spec: Spec = _rewrite_refs(copy.deepcopy(original), renames)
        for section, items in _sections(spec.get("components")).items():
            target = components.setdefault(section, {})
            for name, value in items.items():
                target.setdefault(renames.get((section, name), name), value)
        for tag in spec.get("tags") or []:
            if isinstance(tag, dict) and isinstance(tag.get("name"), str):
                tags.setdefault(tag["name"], tag)
        service_security = _rename_security(spec.get("security"), renames)

        prefix = f"/api/v1/{service}"
        for path, item in (spec.get("paths") or {}).items():
            if not isinstance(item, dict) or not (path == prefix or path.startswith(prefix + "/")):
                continue
            merged_item = paths.setdefault(path, {})
            for key, value in item.items():
                if key not in _METHODS or not isinstance(value, dict):
                    merged_item.setdefault(key, value)
                    continue
                operation = dict(value)
                if not operation.get("tags"):
                    operation["tags"] = [service]
                    tags.setdefault(service, {"name": service})
                if "security" in operation:
                    operation["security"] = _rename_security(operation["security"], renames)
                elif service_security is not None:
                    # The service's global requirement would be lost under ours.
                    operation["security"] = service_security
                op_id = operation.get("operationId")
                if isinstance(op_id, str):
                    unique, counter = op_id, 2
                    if unique in operation_ids:
                        unique = f"{service}_{op_id}"
                    while unique in operation_ids:
                        unique = f"{service}_{op_id}_{counter}"
                        counter += 1
                    operation["operationId"] = unique
                    operation_ids.add(unique)
                merged_item[key] = operation

    # What the gateway itself may answer on any /api/v1 operation: no valid token,
    # spent quota, a body over its cap, a service down or slow.
    document_problems({"paths": paths, "components": components}, _GATEWAY_PROBLEMS)
    merged: Spec = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": _DESCRIPTION},
        "paths": paths,
        "components": components,
        "security": [{BEARER_SCHEME: []}],
    }
    if tags:
        merged["tags"] = list(tags.values())
    return merged


class MergedOpenApi:
    """Fetches every service's /openapi.json, merges them and caches the result briefly.

    A service that does not answer is left out and named in ``info.description``;
    such an incomplete document is cached for less time so it heals quickly.
    Concurrent requests after expiry share one refresh.
    """

    def __init__(
        self,
        service_urls: Mapping[str, str],
        *,
        title: str,
        version: str,
        ttl_seconds: float = 30.0,
        incomplete_ttl_seconds: float = 5.0,
        fetch_timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._urls = dict(service_urls)
        self._title = title
        self._version = version
        self._ttl = ttl_seconds
        self._incomplete_ttl = incomplete_ttl_seconds
        self._timeout = fetch_timeout_seconds
        self._clock = clock
        self._cached: Spec | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self, client: httpx.AsyncClient) -> Spec:
        """The merged document, fetched again if the cached one is too old."""
        if self._cached is not None and self._clock() < self._expires:
            return self._cached
        async with self._lock:
            if self._cached is not None and self._clock() < self._expires:
                return self._cached
            results = await asyncio.gather(*(self._fetch(client, s) for s in self._urls))
            specs = {service: spec for service, spec, _ in results if spec is not None}
            missing = {service: why for service, spec, why in results if spec is None}
            merged = merge_openapi(specs, title=self._title, version=self._version)
            if missing:
                lines = "\n".join(
                    f"- Aviso: el servicio '{s}' no se incluye ({why})."
                    for s, why in missing.items()
                )
                merged["info"]["description"] += "\n\n" + lines
            self._cached = merged
            self._expires = self._clock() + (self._incomplete_ttl if missing else self._ttl)
            return merged

    async def _fetch(self, client: httpx.AsyncClient, service: str) -> tuple[str, Spec | None, str]:
        url = self._urls[service].rstrip("/") + "/openapi.json"
        try:
            response = await client.get(url, timeout=self._timeout)
        except httpx.HTTPError as exc:
            _log.warning("OpenAPI of %s unavailable: %r", service, exc)
            return service, None, "no responde"
        if response.status_code != 200:
            _log.warning("OpenAPI of %s answered %s", service, response.status_code)
            return service, None, f"responde {response.status_code}"
        try:
            spec = response.json()
        except ValueError:
            return service, None, "documento no válido"
        if not isinstance(spec, dict) or not isinstance(spec.get("paths", {}), dict):
            return service, None, "documento no válido"
        return service, spec, ""
