"""RFC 9457 problem details for every error a service or the gateway returns.

Hierarchy::

    ProblemError                 an HTTP problem raised by a use case or route
     ├── NotFound                404 (also what another tenant's resource answers)
     ├── Conflict                409
     ├── Unprocessable           422 with per-field errors
     ├── PayloadTooLarge         413 (uploads over their limit)
     ├── Unauthorized            401
     └── Forbidden               403

Validation errors from FastAPI/pydantic are rendered the same way, with an
``errors`` list naming each field by its JSON pointer-ish location.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.overload import refusals

__all__ = [
    "PROBLEM_JSON",
    "Conflict",
    "FieldError",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "Unauthorized",
    "Unprocessable",
    "install_problem_handlers",
    "document_problems",
    "problem_response",
    "problem_responses",
]

PROBLEM_JSON = "application/problem+json"
# What a 503 for an exhausted connection pool asks the client to wait.
POOL_RETRY_AFTER_SECONDS = 2
_TYPE_BASE = "https://consistorio.es/problemas/"


class FieldError(dict[str, str]):
    """One invalid field: ``{"field": "interesados[0].identificador", "message": ...}``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


class ProblemError(Exception):
    """An error that becomes a problem+json response."""

    status: int = 400
    slug: str = "peticion-incorrecta"

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.title = title or HTTPStatus(self.status).phrase
        self.errors = errors or []
        self.headers = headers or {}


class NotFound(ProblemError):
    status = 404
    slug = "no-encontrado"


class Conflict(ProblemError):
    status = 409
    slug = "conflicto"


class Unprocessable(ProblemError):
    status = 422
    slug = "datos-no-validos"


class PayloadTooLarge(ProblemError):
    status = 413
    slug = "demasiado-grande"


class Unauthorized(ProblemError):
    status = 401
    slug = "no-autenticado"

    def __init__(self, detail: str = "Falta un token válido (Authorization: Bearer).") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ProblemError):
    status = 403
    slug = "sin-permiso"


_DESCRIPTIONS = {
    400: "Petición mal formada",
    401: "Sin token válido",
    403: "Sin el rol necesario",
    404: "No existe (o es de otra entidad)",
    409: "Conflicto con el estado actual",
    413: "Demasiado grande",
    415: "Tipo de contenido no admitido",
    416: "Rango no satisfacible",
    422: "Datos no válidos",
    429: "Demasiadas peticiones",
    502: "El servicio no responde",
    503: "Saturado o deteniéndose: no se ha hecho nada; reintente tras Retry-After con la "
    "misma Idempotency-Key",
    504: "El servicio no ha respondido a tiempo",
}


# The body of every problem (RFC 9457), as documented in OpenAPI.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "Un problema RFC 9457; errors nombra cada campo no válido.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# What any operation of a service may answer whatever its route says: a body that does
# not parse (400), a caller without the role (403) or a resource that is not there or
# not the caller's (404), invalid input (422, services.common.inputs) and an exhausted
# pool (503). 413 goes to operations that take a body.
SERVICE_PROBLEMS = (400, 403, 404, 422, 503)


def document_problems(
    document: dict[str, Any], codes: tuple[int, ...] = SERVICE_PROBLEMS
) -> dict[str, Any]:
    """Documents problem+json answers on every operation of an OpenAPI document.

    Adds ``codes`` where missing, and makes every 4xx/5xx answer documented as JSON
    a problem (FastAPI's default 422 schema is not what the kernel answers).
    """
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    document["components"]["schemas"].pop("HTTPValidationError", None)
    document["components"]["schemas"].pop("ValidationError", None)
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            wanted = list(codes) + ([413] if "requestBody" in operation else [])
            for code in wanted:
                responses.setdefault(str(code), {"description": _DESCRIPTIONS[code]})
            for code, response in responses.items():
                if str(code)[:1] not in ("4", "5") or not isinstance(response, dict):
                    continue
                content = response.setdefault("content", {})
                content.pop("application/json", None)
                content[PROBLEM_JSON] = {"schema": _PROBLEM_REF}
    return document


def problem_responses(
    *codes: int, overrides: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes answered as problem+json (one place for all)."""
    texts = {**_DESCRIPTIONS, **(overrides or {})}
    return {code: {"content": {PROBLEM_JSON: {}}, "description": texts[code]} for code in codes}


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    errors: list[FieldError] | list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """Builds a problem+json response; the one place that knows the body's shape.

    ``extensions`` are RFC 9457 extension members: what a client needs besides the
    problem itself (e.g. the state of a failed job and where to retry it).
    """
    body: dict[str, Any] = {
        "type": _TYPE_BASE + (slug or str(status)),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or "body"


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    """Turns pydantic's error list into ``{field, message}`` pairs."""
    out = []
    for err in exc.errors():
        msg = str(err.get("msg", "valor no válido"))
        msg = msg.removeprefix("Value error, ")
        out.append(FieldError(_field_name(err.get("loc", ())), msg))
    return out


def _routes(routes: Any) -> Any:
    # FastAPI keeps included routers as branches; their effective routes carry the paths.
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _routes(candidates())
        else:
            yield route


def _allowed_methods(request: Request) -> list[str]:
    # The resource is the most literal path that matches: /libros/exportaciones, not
    # /libros/{libro_id} with "exportaciones" for an id.
    by_parameters: dict[int, set[str]] = {}
    for route in _routes(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            parameters = str(getattr(route, "path", "")).count("{")
            by_parameters.setdefault(parameters, set()).update(getattr(route, "methods", ()) or ())
    return sorted(by_parameters[min(by_parameters)]) if by_parameters else []


def install_problem_handlers(app: FastAPI) -> None:
    """Makes every error of ``app`` (validation, HTTP, unexpected) a problem+json."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            slug=exc.slug,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(
            422,
            f"Datos no válidos: {fields}",
            slug=Unprocessable.slug,
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette lists the methods of the first route matching the path only;
            # a resource whose GET and POST live in different routes has both.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(
            exc.status_code,
            str(exc.detail),
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _pool_exhausted(request: Request, exc: SQLAlchemyTimeoutError) -> JSONResponse:
        # Every connection of the request pool is busy: a short, honest "come back"
        # instead of a 500, and nothing was written.
        # Counted and logged once per burst (services.common.overload), not per request.
        refusals.record(getattr(request.app.state, "service_name", "?"), "pool_exhausted")
        return problem_response(
            503,
            "El servicio está saturado: vuelva a intentarlo en unos segundos.",
            slug="saturado",
            instance=request.url.path,
            headers={"Retry-After": str(POOL_RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logging.getLogger("consistorio.errors").exception("unhandled error")
        return problem_response(
            500, "Error interno. Se ha registrado para su análisis.", instance=request.url.path
        )
