"""Would a new OpenAPI document break a client written against the old one?

The REST twin of :mod:`services.common.contracts.compatibility`, which it reuses for every
schema: :func:`openapi_incompatibilities` lists, per operation,

* a path or an operation (method) removed, a success status (2xx) or media type of a
  response removed, a media type no longer accepted for the request body;
* a parameter that is new and required, or became required; a request body that became
  required;
* a parameter or request body schema that accepts less (a field made required, a type
  changed or narrowed, a constraint added or tightened: ``direction="request"``);
* a response schema that promises less (a field removed or no longer required, a type
  changed or widened, such as a field that may now be null: ``direction="response"``).

Additive changes pass: a new path, operation, optional parameter or field, a loosened
request constraint, an enum value added (clients tolerate unknown values, as bus
consumers do). Names a client never sends nor reads do not count: component schemas are
compared where they are used, so renaming ``Body_x`` or an ``operationId`` breaks nothing
on the wire. ``anyOf: [X, {"type": "null"}]``, pydantic's spelling of an optional
field, is read as X's type plus ``null`` so the schema inside it is still compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.contracts.compatibility import Direction, incompatibilities

__all__ = ["openapi_incompatibilities"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MISSING: Any = object()

Document = Mapping[str, Any]


def openapi_incompatibilities(old: Document, new: Document) -> list[str]:
    """Every change from ``old`` to ``new`` that would break a client of ``old``.

    Each message starts with the operation (``POST /api/v1/...``); an empty list means
    clients of ``old`` keep working against ``new``.
    """
    problems: list[str] = []
    old_paths: Mapping[str, Any] = old.get("paths") or {}
    new_paths: Mapping[str, Any] = new.get("paths") or {}
    for path, old_item in sorted(old_paths.items()):
        new_item = new_paths.get(path)
        if new_item is None:
            problems.append(f"{path}: path removed")
            continue
        for method in _METHODS:
            if method not in old_item:
                continue
            where = f"{method.upper()} {path}"
            if method not in new_item:
                problems.append(f"{where}: operation removed")
                continue
            before = _Operation(old, old_item, method)
            after = _Operation(new, new_item, method)
            problems.extend(f"{where}: {msg}" for msg in _operation_problems(before, after))
    return problems


class _Operation:
    """One operation with its path-level parameters and every ``$ref`` resolved."""

    def __init__(self, document: Document, item: Mapping[str, Any], method: str) -> None:
        self.document = document
        operation: Mapping[str, Any] = item[method]
        parameters: dict[tuple[str, str], Mapping[str, Any]] = {}
        for raw in [*item.get("parameters", ()), *operation.get("parameters", ())]:
            parameter = self.resolve(raw)
            parameters[(parameter["in"], parameter["name"])] = parameter
        self.parameters = parameters
        body = operation.get("requestBody")
        self.body: Mapping[str, Any] | None = None if body is None else self.resolve(body)
        self.responses: Mapping[str, Any] = {
            str(status): self.resolve(response)
            for status, response in (operation.get("responses") or {}).items()
        }

    def resolve(self, node: Any) -> Any:
        """``node`` with local references replaced by their targets (cycles kept as refs)."""
        return _inline(node, self.document, ())


def _operation_problems(before: _Operation, after: _Operation) -> list[str]:
    problems: list[str] = []
    for key, parameter in sorted(after.parameters.items()):
        name = f"{key[0]} parameter {key[1]!r}"
        previous = before.parameters.get(key)
        if previous is None:
            if parameter.get("required"):
                problems.append(f"{name}: new and required")
            continue  # a new optional one breaks nobody; one dropped is not looked at
        if parameter.get("required") and not previous.get("required"):
            problems.append(f"{name}: became required")
        problems.extend(_schema_problems(previous, parameter, name, direction="request"))
    problems.extend(_body_problems(before.body, after.body))
    for status, old_response in sorted(before.responses.items()):
        if not status.startswith("2"):
            continue  # error answers may change shape; clients read them as problem+json
        response = after.responses.get(status)
        if response is None:
            problems.append(f"response {status}: removed")
            continue
        for media, old_content in sorted((old_response.get("content") or {}).items()):
            content = (response.get("content") or {}).get(media)
            where = f"response {status} {media}"
            if content is None:
                problems.append(f"{where}: no longer returned")
                continue
            problems.extend(_schema_problems(old_content, content, where, direction="response"))
    return problems


def _body_problems(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    if after is None:
        return []  # a body no longer read: old clients still send one harmlessly
    if after.get("required") and not (before or {}).get("required"):
        return ["request body: became required"]
    problems: list[str] = []
    new_content: Mapping[str, Any] = after.get("content") or {}
    for media, old_content in sorted(((before or {}).get("content") or {}).items()):
        where = f"request body {media}"
        if media not in new_content:
            problems.append(f"{where}: no longer accepted")
            continue
        problems.extend(
            _schema_problems(old_content, new_content[media], where, direction="request")
        )
    return problems


def _schema_problems(
    old: Mapping[str, Any], new: Mapping[str, Any], where: str, *, direction: Direction
) -> list[str]:
    before, after = _schema(old.get("schema", {})), _schema(new.get("schema", {}))
    return [f"{where} {msg}" for msg in incompatibilities(before, after, direction=direction)]


def _inline(node: Any, document: Document, stack: tuple[str, ...]) -> Any:
    """A copy of ``node`` with each local ``$ref`` replaced by its target.

    A reference met again inside its own expansion stays a ``$ref``: a recursive schema
    is compared by its name at the second level.
    """
    if isinstance(node, list):
        return [_inline(item, document, stack) for item in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in stack:
        target = _pointer(document, ref)
        if target is not _MISSING:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            merged = {**_inline(target, document, (*stack, ref)), **siblings}
            return _inline(merged, document, (*stack, ref)) if siblings else merged
    return {key: _inline(value, document, stack) for key, value in node.items()}


def _pointer(document: Document, ref: str) -> Any:
    node: Any = document
    for raw in ref[2:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _schema(node: Any) -> Any:
    """A schema without its prose, and with pydantic's optional spelled as a type.

    Titles and descriptions are annotations, which the comparison ignores, except inside
    keywords it does not analyse (``anyOf``, ``oneOf``...), where a renamed model's new
    title would read as a change. ``anyOf: [X, {"type": "null"}]`` becomes X with
    ``null`` among its types, so X's constraints are still compared.
    """
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _PROSE:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _schema(item) for name, item in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_schema(item) for item in value]
        elif key in _SCHEMA_VALUES:
            out[key] = _schema(value)
        else:
            out[key] = value
    branches = out.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or _NULL not in branches:
        return out
    (other,) = [branch for branch in branches if branch != _NULL]
    kinds = other.get("type") if isinstance(other, Mapping) else None
    if not isinstance(kinds, str | list) or set(other) & (set(out) - {"anyOf"}):
        return out
    merged = {key: value for key, value in out.items() if key != "anyOf"}
    merged.update(other)
    merged["type"] = sorted({*([kinds] if isinstance(kinds, str) else kinds), "null"})
    return merged


_NULL = {"type": "null"}
_PROSE = frozenset({"title", "description", "examples", "example", "$comment"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_VALUES = frozenset(
    {"items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else"}
)
