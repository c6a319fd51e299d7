"""Inputs every service refuses before a route sees them: control characters in text
and integers beyond what the database stores.

PostgreSQL cannot store NUL in text, and an ``INTEGER`` column (or an ``OFFSET``)
cannot take 10^20: both used to surface as 500s deep inside a query. Rather than
ask every field of every schema to remember it, the kernel checks, once per request
and as an app-wide dependency (:func:`refuse_unsafe_input`), the path and query
parameters by name, and the JSON or form body the route declares; it answers a
422 problem naming each bad field (``interesados[0].nombre``, ``q``, ``page``).
Routes that stream their own body (multipart uploads) call :func:`check_json_text`
on the parts they parse. :func:`document_input_rules` writes the same rules into
the OpenAPI document, so that what is refused is also what is documented.

Text fields may hold tab, line feed and carriage return (a ``resumen`` has lines);
parameters (path, query) may hold no control character at all. Integers, wherever
they come from, must fit PostgreSQL's ``integer``.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from services.common.errors import FieldError, Unprocessable

__all__ = [
    "DIR3",
    "DIR3_OFICINA",
    "DIR3_OFICINA_PARAMETRO",
    "INT_MAX",
    "INT_MIN",
    "check_json_text",
    "document_input_rules",
    "refuse_unsafe_input",
]

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

# C0 and C1 controls and DEL; lone surrogates cannot be encoded for the database either.
_TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_PARAM_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same sets as JSON Schema patterns (ECMA-262 syntax) for the OpenAPI document.
TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
PARAM_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"
# What in a raw JSON body may hide one of the above: an escaped control character or
# surrogate, \b or \f, a raw C1 control or DEL, or a number long enough to overflow.
# A match only sends the body to the exact check; most bodies never match.
_JSON_SUSPECT = re.compile(
    rb"\\u00[01][0-9a-fA-F]|\\u00[7-9][0-9a-fA-F]|\\u[dD][89a-fA-F]|\\[bf]"
    rb"|\xc2[\x80-\x9f]|\x7f|[0-9]{10,}"
)
# DIR3 codes as the services accept them (they trim and upper-case before checking),
# for schemas: ``Field(json_schema_extra=DIR3)`` documents what the validator enforces.
# The blanks around are those text may hold (``\s`` also matched the vertical tab and
# form feed this module refuses); a path or query parameter holds no control character
# at all, so its codes may only be padded with spaces (``DIR3_OFICINA_PARAMETRO``).
DIR3: dict[str, Any] = {"pattern": r"^[ \t\n\r]*[A-Za-z][A-Za-z0-9]{8}[ \t\n\r]*$"}
DIR3_OFICINA: dict[str, Any] = {"pattern": r"^[ \t\n\r]*[Oo][A-Za-z0-9]{8}[ \t\n\r]*$"}
DIR3_OFICINA_PARAMETRO: dict[str, Any] = {"pattern": r"^ *[Oo][A-Za-z0-9]{8} *$"}
_MESSAGE_CONTROL = "contiene caracteres de control no admitidos"
_MESSAGE_RANGE = f"debe ser un entero entre {INT_MIN} y {INT_MAX}"


_NUMBER = re.compile(r"\s*[+-]?([0-9_]+(\.[0-9_]*)?|\.[0-9_]+)([eE][+-]?[0-9]+)?\s*")
_MESSAGE_ISO = "debe ser una fecha ISO 8601 (AAAA-MM-DD o AAAA-MM-DDThh:mm:ss±hh:mm)"


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _walk(value: Any, field: str) -> Iterator[FieldError]:
    if isinstance(value, str):
        if _TEXT_FORBIDDEN.search(value):
            yield FieldError(field or "body", _MESSAGE_CONTROL)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            yield FieldError(field or "body", _MESSAGE_RANGE)
    elif isinstance(value, dict):
        for key, item in value.items():
            if _TEXT_FORBIDDEN.search(key):
                yield FieldError(_join(field, "(nombre)"), _MESSAGE_CONTROL)
            yield from _walk(item, _join(field, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, _join(field, index))


def json_errors(raw: bytes, *, field: str = "") -> list[FieldError]:
    """The fields of a JSON document holding control characters or oversized integers."""
    if not _JSON_SUSPECT.search(raw):
        return []
    try:
        document = json.loads(raw)
    except ValueError:
        return []  # not JSON at all: the route's own parsing says so
    return list(_walk(document, field))


def _refuse(errors: list[FieldError]) -> None:
    if errors:
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise Unprocessable(f"Datos no válidos: {fields}", errors=errors)


def check_json_text(raw: bytes, *, field: str) -> None:
    """Refuses (422) a JSON part of a streamed body, naming fields under ``field``."""
    _refuse(json_errors(raw, field=field))


def _is_a(annotation: Any, kinds: tuple[type, ...]) -> bool:
    if annotation in kinds:
        return True
    origin = get_origin(annotation)
    # int | None, Optional[date], list[int]: any such type inside counts.
    return origin in (Union, types.UnionType, list, tuple, set) and any(
        _is_a(arg, kinds) for arg in get_args(annotation)
    )


def _params_of(route: Any, kinds: tuple[type, ...]) -> set[str]:
    if not isinstance(route, APIRoute):
        return set()
    params = [*route.dependant.path_params, *route.dependant.query_params]
    for sub in route.dependant.dependencies:
        params.extend([*sub.path_params, *sub.query_params])
    return {p.alias for p in params if _is_a(p.field_info.annotation, kinds)}


def _param_errors(request: Request) -> list[FieldError]:
    errors: list[FieldError] = []
    route = request.scope.get("route")
    integers = _params_of(route, (int,))
    instants = _params_of(route, (date, datetime))
    values = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in values:
        if not isinstance(value, str):
            continue
        if _PARAM_FORBIDDEN.search(name) or _PARAM_FORBIDDEN.search(value):
            errors.append(FieldError(name, _MESSAGE_CONTROL))
        elif name in integers and re.fullmatch(r"\s*[+-]?[0-9_]+\s*", value):
            number = int(value.replace("_", ""))
            if not INT_MIN <= number <= INT_MAX:
                errors.append(FieldError(name, _MESSAGE_RANGE))
        elif name in instants and _NUMBER.fullmatch(value):
            # pydantic reads a bare number as a Unix time; the documents promise ISO 8601.
            errors.append(FieldError(name, _MESSAGE_ISO))
    return errors


async def _body_errors(request: Request) -> list[FieldError]:
    route = request.scope.get("route")
    # Only bodies FastAPI has already read for the route: reading one here would
    # consume a body the route streams itself.
    if not isinstance(route, APIRoute) or route.body_field is None:
        return []
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        form = await request.form()
        errors: list[FieldError] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                continue
            if _TEXT_FORBIDDEN.search(name) or _TEXT_FORBIDDEN.search(value):
                errors.append(FieldError(name, _MESSAGE_CONTROL))
        return errors
    return json_errors(await request.body())


async def refuse_unsafe_input(request: Request) -> None:
    """App-wide dependency: 422 for control characters or integers out of range."""
    _refuse(_param_errors(request) + await _body_errors(request))


def _bound(schema: Any, *, in_parameter: bool, names: bool = True) -> None:
    if isinstance(schema, list):
        for item in schema:
            _bound(item, in_parameter=in_parameter, names=names)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind == "integer":
        schema.setdefault("maximum", INT_MAX)
        schema.setdefault("minimum", INT_MIN)
    elif kind == "string" and not {"format", "pattern", "enum", "const"} & schema.keys():
        schema["pattern"] = PARAM_PATTERN if in_parameter else TEXT_PATTERN
    elif kind == "object" and names and not in_parameter:
        # The names of an object's members are text too (a dict's keys, extra fields).
        schema.setdefault("propertyNames", {"pattern": TEXT_PATTERN})
    for key, value in schema.items():
        if key in ("example", "examples", "default", "const", "enum"):
            continue
        _bound(value, in_parameter=in_parameter, names=names)


def document_input_rules(document: dict[str, Any]) -> dict[str, Any]:
    """Writes the rules above into an OpenAPI document (integer bounds, text patterns)."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                # Headers are not checked here, so their schemas promise nothing more.
                if parameter.get("in") in ("path", "query"):
                    _bound(parameter.get("schema"), in_parameter=True)
            # A body written inline is one its route reads itself (an upload, a YAML or
            # JSON definition): the kernel checks its text, not its member names.
            _bound(operation.get("requestBody"), in_parameter=False, names=False)
    for schema in document.get("components", {}).get("schemas", {}).values():
        # Shared by requests and answers; answers are made of stored input, so the
        # same rules hold for them.
        _bound(schema, in_parameter=False)
    return document
