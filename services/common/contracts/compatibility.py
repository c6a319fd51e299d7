"""Is an in-place edit of a published schema a compatible (minor) change?

A published contract version (``v1``) is edited in place only by minor changes: old
producers, stored events and replays must stay valid, and consumers must keep every
field they were promised. :func:`incompatibilities` compares the published schema
with the edited one and lists every change that breaks that promise; an empty list
means the edit may ship as a minor, anything else needs a new major file side by side.

Rules, per subschema (recursing into ``properties``, ``items``, ``prefixItems``,
``additionalProperties`` and ``$defs``):

* breaking: a property removed, a property made required or no longer required, a
  type changed or narrowed, an enum value removed, a const added or changed, a
  ``pattern`` or ``format`` added or changed, a lower bound (``minimum``,
  ``minLength``, ``minItems``...) added or raised, an upper bound added or lowered,
  ``multipleOf`` added or made stricter, ``uniqueItems`` turned on,
  ``additionalProperties`` turned false or restricted, a ``$ref`` changed, a ``$defs``
  entry removed, and any change to a keyword this module does not analyse
  (``allOf``, ``if``...), which it cannot prove safe;
* compatible: an optional property added, an enum value added, a type widened, any of
  the constraints above (or a ``not``) removed or loosened, and edits of annotations (``title``,
  ``description``, ``examples``, ``$comment``, ``default``, ``deprecated``...).

``$ref`` targets are not followed: a local ``#/$defs/...`` target is compared where
it is defined, which is why every contract keeps its shared shapes in its own
``$defs`` instead of referencing another file.

Who reads the schema decides which changes break. An event (the default) is written by
producers and read by consumers, so both kinds count, as listed above. A REST request
body or parameter is only written by clients (``direction="request"``): a field no longer
required breaks nobody. A REST response is only read by clients
(``direction="response"``): a narrowing breaks nobody, but a type widened (a field that
may now be null) does, as do a field removed or no longer required.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, Literal

__all__ = ["Direction", "incompatibilities"]

Direction = Literal["event", "request", "response"]

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "$comment",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_ANALYSED = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "$defs",
        "definitions",
        "enum",
        "const",
        "pattern",
        "format",
        "multipleOf",
        "uniqueItems",
        "$ref",
        *_LOWER_BOUNDS,
        *_UPPER_BOUNDS,
    }
)
_MISSING = object()

Schema = Mapping[str, Any]


def incompatibilities(
    old: Mapping[str, Any] | bool,
    new: Mapping[str, Any] | bool,
    *,
    direction: Direction = "event",
) -> list[str]:
    """Every change from ``old`` to ``new`` that would break its writers or readers.

    Each message starts with the JSON pointer (``#/properties/...``) of the schema
    location concerned. An empty list means ``new`` is a compatible minor of ``old``.
    ``direction`` says who reads and writes the schema (see the module's docstring).
    """
    findings = _Findings(direction)
    _compare(_normalise(old), _normalise(new), "#", findings)
    return findings.problems


# Which kinds of change break, by who writes and reads the schema.
_BREAKING: dict[Direction, frozenset[str]] = {
    "event": frozenset({"broken", "narrowed", "loosened"}),
    "request": frozenset({"broken", "narrowed"}),
    "response": frozenset({"broken", "loosened", "widened"}),
}


class _Findings:
    """The changes found, kept when they break someone in the schema's direction.

    ``narrowed``: accepts less (breaks writers); ``loosened``: promises less (a field no
    longer required, breaks readers); ``widened``: a type accepts more (breaks readers,
    tolerated on the bus); ``broken``: breaks both.
    """

    def __init__(self, direction: Direction) -> None:
        self._kept = _BREAKING[direction]
        self.problems: list[str] = []

    def _add(self, kind: str, message: str) -> None:
        if kind in self._kept:
            self.problems.append(message)

    def broken(self, message: str) -> None:
        self._add("broken", message)

    def narrowed(self, message: str) -> None:
        self._add("narrowed", message)

    def loosened(self, message: str) -> None:
        self._add("loosened", message)

    def widened(self, message: str) -> None:
        self._add("widened", message)


def _normalise(schema: Any) -> Schema:
    """Boolean schemas as objects: ``true`` accepts anything, ``false`` nothing."""
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    if isinstance(schema, Mapping):
        return schema
    raise TypeError(f"not a JSON Schema: {schema!r}")


def _child(path: str, *segments: str | int) -> str:
    """JSON pointer of a subschema, escaping ``~`` and ``/`` in property names."""
    escaped = (str(s).replace("~", "~0").replace("/", "~1") for s in segments)
    return "/".join([path, *escaped])


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _compare(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    """Appends to ``out`` the breaking changes between two subschemas at ``path``."""
    for check in _CHECKS:
        check(old, new, path, out)


def _check_ref(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    before, after = old.get("$ref", _MISSING), new.get("$ref", _MISSING)
    if before == after:
        return
    if before is _MISSING:
        out.broken(f"{path}: $ref {_show(after)} added")
    elif after is _MISSING:
        out.broken(f"{path}: $ref {_show(before)} removed")
    else:
        out.broken(f"{path}: $ref changed from {_show(before)} to {_show(after)}")


def _types(schema: Schema) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _covers(types: set[str], kind: str) -> bool:
    return kind in types or (kind == "integer" and "number" in types)


def _check_type(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    before, after = _types(old), _types(new)
    if after is None:
        return
    if before is None:
        out.narrowed(f"{path}: type restricted to {_show(sorted(after))} (was unrestricted)")
        return
    shown = f"from {_show(sorted(before))} to {_show(sorted(after))}"
    if all(_covers(after, kind) for kind in before):
        if before != after:
            out.widened(f"{path}: type widened {shown}")
        return
    if all(_covers(before, kind) for kind in after):
        out.narrowed(f"{path}: type narrowed {shown}")
    else:
        out.broken(f"{path}: type changed {shown}")


def _allowed(schema: Schema) -> dict[str, Any] | None:
    """The values ``enum``/``const`` allow, keyed by canonical JSON; None when unrestricted."""
    allowed: dict[str, Any] | None = None
    if "enum" in schema:
        allowed = {_show(v): v for v in schema["enum"]}
    if "const" in schema:
        const = _show(schema["const"])
        allowed = {const: schema["const"]} if allowed is None or const in allowed else {}
    return allowed


def _check_values(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    before, after = _allowed(old), _allowed(new)
    if after is None:
        return
    if before is None:
        keyword = "const" if "const" in new else "enum"
        out.narrowed(f"{path}: {keyword} added ({_show(list(after.values()))})")
        return
    removed = [value for key, value in before.items() if key not in after]
    if not removed:
        return
    if "const" in old and "const" in new:
        out.narrowed(f"{path}: const changed from {_show(old['const'])} to {_show(new['const'])}")
    elif "const" in new:
        out.narrowed(f"{path}: const {_show(new['const'])} removes allowed values {_show(removed)}")
    else:
        out.narrowed(f"{path}: enum value(s) removed: {_show(removed)}")


def _check_exact(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    """``pattern`` and ``format``: adding or changing one can only reject more."""
    for keyword in ("pattern", "format"):
        before, after = old.get(keyword, _MISSING), new.get(keyword, _MISSING)
        if after is _MISSING or before == after:
            continue
        if before is _MISSING:
            out.narrowed(f"{path}: {keyword} {_show(after)} added")
        else:
            out.broken(f"{path}: {keyword} changed from {_show(before)} to {_show(after)}")


def _check_bounds(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    for keyword in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
        if keyword not in new:
            continue
        after = new[keyword]
        if keyword not in old:
            out.narrowed(f"{path}: {keyword} {_show(after)} added")
            continue
        before = old[keyword]
        tighter = after > before if keyword in _LOWER_BOUNDS else after < before
        if tighter:
            out.narrowed(f"{path}: {keyword} tightened from {_show(before)} to {_show(after)}")


def _check_multiple_of(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    if "multipleOf" not in new:
        return
    after = new["multipleOf"]
    if "multipleOf" not in old:
        out.narrowed(f"{path}: multipleOf {_show(after)} added")
        return
    before = old["multipleOf"]
    if (Fraction(str(before)) / Fraction(str(after))).denominator != 1:
        out.narrowed(f"{path}: multipleOf changed from {_show(before)} to {_show(after)}")


def _check_unique_items(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
        out.narrowed(f"{path}: uniqueItems turned on")


def _check_required(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    before, after = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(after - before):
        out.narrowed(f"{_child(path, 'properties', name)}: became required (old producers omit it)")
    for name in sorted(before - after):
        out.loosened(
            f"{_child(path, 'properties', name)}: no longer required (consumers rely on it)"
        )


def _check_properties(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    before: Mapping[str, Any] = old.get("properties", {})
    after: Mapping[str, Any] = new.get("properties", {})
    old_additional = old.get("additionalProperties", True)
    for name, schema in before.items():
        where = _child(path, "properties", name)
        if name not in after:
            out.broken(f"{where}: property removed")
            continue
        _compare(_normalise(schema), _normalise(after[name]), where, out)
    for name, schema in after.items():
        if name in before or old_additional is True or old_additional is False:
            continue
        # A new name that used to fall under an additionalProperties schema.
        where = _child(path, "properties", name)
        _compare(_normalise(old_additional), _normalise(schema), where, out)


def _check_additional(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    before = old.get("additionalProperties", True)
    after = new.get("additionalProperties", True)
    if before is False or (before is True and after is True):
        return
    where = _child(path, "additionalProperties")
    if after is False:
        out.narrowed(f"{where}: turned false (unknown properties were allowed)")
        return
    _compare(_normalise(before), _normalise(after), where, out)


def _check_items(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    before_prefix: list[Any] = list(old.get("prefixItems", []))
    after_prefix: list[Any] = list(new.get("prefixItems", []))
    before_rest = old.get("items", True)
    after_rest = new.get("items", True)
    for index in range(max(len(before_prefix), len(after_prefix))):
        old_item = before_prefix[index] if index < len(before_prefix) else before_rest
        new_item = after_prefix[index] if index < len(after_prefix) else after_rest
        where = _child(path, "prefixItems", index)
        _compare(_normalise(old_item), _normalise(new_item), where, out)
    if "items" in old or "items" in new:
        _compare(_normalise(before_rest), _normalise(after_rest), _child(path, "items"), out)


def _check_defs(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    for keyword in ("$defs", "definitions"):
        before: Mapping[str, Any] = old.get(keyword, {})
        after: Mapping[str, Any] = new.get(keyword, {})
        for name, schema in before.items():
            where = _child(path, keyword, name)
            if name not in after:
                out.broken(f"{where}: definition removed (other schemas may reference it)")
                continue
            _compare(_normalise(schema), _normalise(after[name]), where, out)


def _check_other(old: Schema, new: Schema, path: str, out: _Findings) -> None:
    """Keywords not analysed above: any change is reported, since it cannot be proven safe."""
    for keyword in sorted((set(old) | set(new)) - _ANALYSED - _ANNOTATIONS):
        before, after = old.get(keyword, _MISSING), new.get(keyword, _MISSING)
        if before == after:
            continue
        if before is _MISSING:
            out.broken(f"{_child(path, keyword)}: keyword added (not analysed, assumed breaking)")
        elif after is _MISSING and keyword == "not":
            continue  # dropping a "not" only accepts more (and turns false into true)
        elif after is _MISSING:
            out.broken(f"{_child(path, keyword)}: keyword removed (not analysed, assumed breaking)")
        else:
            out.broken(f"{_child(path, keyword)}: changed (not analysed, assumed breaking)")


_CHECKS: tuple[Callable[[Schema, Schema, str, _Findings], None], ...] = (
    _check_ref,
    _check_type,
    _check_values,
    _check_exact,
    _check_bounds,
    _check_multiple_of,
    _check_unique_items,
    _check_required,
    _check_properties,
    _check_additional,
    _check_items,
    _check_defs,
    _check_other,
)
