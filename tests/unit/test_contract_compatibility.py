"""incompatibilities(): each rule, in the breaking and in the compatible direction.

The table is the specification of what may change in place in a published bus
contract; a case that flips means consumers or producers would be broken silently.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.common.contracts.compatibility import incompatibilities


def obj(properties: dict[str, Any], **keywords: Any) -> dict[str, Any]:
    """An object schema with the given properties and extra keywords."""
    return {"type": "object", "properties": properties, **keywords}


STR: dict[str, Any] = {"type": "string"}

# (case id, old schema, new schema, fragment of the expected message or None if compatible)
CASES: list[tuple[str, Any, Any, str | None]] = [
    # properties
    (
        "property removed",
        obj({"a": STR, "b": STR}),
        obj({"a": STR}),
        "#/properties/b: property removed",
    ),
    ("optional property added", obj({"a": STR}), obj({"a": STR, "b": STR}), None),
    (
        "nested property removed",
        obj({"a": obj({"x": STR})}),
        obj({"a": obj({})}),
        "#/properties/a/properties/x: property removed",
    ),
    # required
    (
        "new required property",
        obj({"a": STR}),
        obj({"a": STR, "b": STR}, required=["b"]),
        "#/properties/b: became required",
    ),
    (
        "existing property made required",
        obj({"a": STR}),
        obj({"a": STR}, required=["a"]),
        "#/properties/a: became required",
    ),
    (
        "required property made optional",
        obj({"a": STR}, required=["a"]),
        obj({"a": STR}),
        "#/properties/a: no longer required",
    ),
    (
        "required list reordered",
        obj({"a": STR, "b": STR}, required=["a", "b"]),
        obj({"a": STR, "b": STR}, required=["b", "a"]),
        None,
    ),
    # type
    (
        "type changed",
        obj({"a": STR}),
        obj({"a": {"type": "integer"}}),
        "#/properties/a: type changed",
    ),
    (
        "type narrowed",
        obj({"a": {"type": ["string", "null"]}}),
        obj({"a": STR}),
        "#/properties/a: type narrowed",
    ),
    ("type widened with null", obj({"a": STR}), obj({"a": {"type": ["string", "null"]}}), None),
    (
        "integer narrowed from number",
        obj({"a": {"type": "number"}}),
        obj({"a": {"type": "integer"}}),
        "#/properties/a: type narrowed",
    ),
    (
        "integer widened to number",
        obj({"a": {"type": "integer"}}),
        obj({"a": {"type": "number"}}),
        None,
    ),
    (
        "type added where there was none",
        obj({"a": {}}),
        obj({"a": STR}),
        "#/properties/a: type restricted",
    ),
    ("type removed", obj({"a": STR}), obj({"a": {}}), None),
    ("type list reordered", {"type": ["string", "null"]}, {"type": ["null", "string"]}, None),
    # enum and const
    (
        "enum value removed",
        {"enum": ["a", "b"]},
        {"enum": ["a"]},
        '#: enum value(s) removed: ["b"]',
    ),
    ("enum value added", {"enum": ["a"]}, {"enum": ["a", "b"]}, None),
    ("enum added", STR, {"type": "string", "enum": ["a"]}, "#: enum added"),
    ("enum removed", {"type": "string", "enum": ["a"]}, STR, None),
    (
        "const changed",
        {"const": "iniciado"},
        {"const": "abierto"},
        '#: const changed from "iniciado" to "abierto"',
    ),
    ("const added", STR, {"type": "string", "const": "x"}, "#: const added"),
    (
        "const unchanged",
        {"const": "x", "description": "a"},
        {"const": "x", "description": "b"},
        None,
    ),
    ("const widened to enum", {"const": "x"}, {"enum": ["x", "y"]}, None),
    (
        "enum narrowed to const",
        {"enum": ["x", "y"]},
        {"const": "x"},
        '#: const "x" removes allowed values ["y"]',
    ),
    # pattern and format
    (
        "pattern added",
        obj({"a": STR}),
        obj({"a": {"type": "string", "pattern": "^x"}}),
        '#/properties/a: pattern "^x" added',
    ),
    ("pattern changed", {"pattern": "^[ES]/"}, {"pattern": "^E/"}, "#: pattern changed"),
    ("pattern removed", {"pattern": "^x"}, {}, None),
    ("format added", STR, {"type": "string", "format": "uuid"}, '#: format "uuid" added'),
    ("format changed", {"format": "date"}, {"format": "date-time"}, "#: format changed"),
    ("format removed", {"type": "string", "format": "uuid"}, STR, None),
    # lower bounds
    ("minLength raised", {"minLength": 1}, {"minLength": 2}, "#: minLength tightened from 1 to 2"),
    ("minLength lowered", {"minLength": 2}, {"minLength": 1}, None),
    ("minLength added", STR, {"type": "string", "minLength": 1}, "#: minLength 1 added"),
    ("minLength removed", {"minLength": 1}, {}, None),
    ("minimum raised", {"minimum": 1}, {"minimum": 5}, "#: minimum tightened"),
    ("minimum lowered", {"minimum": 5}, {"minimum": 1}, None),
    ("exclusiveMinimum added", {}, {"exclusiveMinimum": 0}, "#: exclusiveMinimum 0 added"),
    (
        "minItems raised",
        {"type": "array", "minItems": 1},
        {"type": "array", "minItems": 2},
        "#: minItems tightened",
    ),
    ("minItems lowered", {"type": "array", "minItems": 2}, {"type": "array", "minItems": 1}, None),
    ("minProperties added", {}, {"minProperties": 1}, "#: minProperties 1 added"),
    # upper bounds
    (
        "maxLength lowered",
        {"maxLength": 240},
        {"maxLength": 200},
        "#: maxLength tightened from 240 to 200",
    ),
    ("maxLength raised", {"maxLength": 200}, {"maxLength": 240}, None),
    ("maxLength added", STR, {"type": "string", "maxLength": 10}, "#: maxLength 10 added"),
    ("maxLength removed", {"maxLength": 10}, {}, None),
    ("maximum lowered", {"maximum": 10}, {"maximum": 9}, "#: maximum tightened"),
    ("maximum raised", {"maximum": 9}, {"maximum": 10}, None),
    ("maxItems lowered", {"maxItems": 3}, {"maxItems": 2}, "#: maxItems tightened"),
    ("exclusiveMaximum raised", {"exclusiveMaximum": 3}, {"exclusiveMaximum": 4}, None),
    # multipleOf and uniqueItems
    (
        "multipleOf added",
        {"type": "number"},
        {"type": "number", "multipleOf": 2},
        "#: multipleOf 2 added",
    ),
    ("multipleOf stricter", {"multipleOf": 2}, {"multipleOf": 4}, "#: multipleOf changed"),
    ("multipleOf looser", {"multipleOf": 4}, {"multipleOf": 2}, None),
    ("multipleOf looser decimal", {"multipleOf": 0.1}, {"multipleOf": 0.05}, None),
    (
        "uniqueItems turned on",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        "#: uniqueItems turned on",
    ),
    ("uniqueItems turned off", {"type": "array", "uniqueItems": True}, {"type": "array"}, None),
    # additionalProperties
    (
        "additionalProperties turned false",
        obj({"a": STR}),
        obj({"a": STR}, additionalProperties=False),
        "#/additionalProperties: turned false",
    ),
    (
        "additionalProperties explicit true",
        obj({"a": STR}),
        obj({"a": STR}, additionalProperties=True),
        None,
    ),
    (
        "additionalProperties opened",
        obj({"a": STR}, additionalProperties=False),
        obj({"a": STR}),
        None,
    ),
    (
        "additionalProperties restricted to a schema",
        obj({}),
        obj({}, additionalProperties=STR),
        "#/additionalProperties: type restricted",
    ),
    (
        "additionalProperties schema loosened",
        obj({}, additionalProperties=STR),
        obj({}, additionalProperties=True),
        None,
    ),
    (
        "property added that escapes additionalProperties",
        obj({}, additionalProperties=STR),
        obj({"n": {"type": "integer"}}, additionalProperties=STR),
        "#/properties/n: type changed",
    ),
    (
        "property added under closed object",
        obj({}, additionalProperties=False),
        obj({"n": STR}, additionalProperties=False),
        None,
    ),
    # items and prefixItems
    (
        "items type changed",
        {"type": "array", "items": STR},
        {"type": "array", "items": {"type": "integer"}},
        "#/items: type changed",
    ),
    ("items added", {"type": "array"}, {"type": "array", "items": STR}, "#/items: type restricted"),
    ("items removed", {"type": "array", "items": STR}, {"type": "array"}, None),
    (
        "items object gains optional property",
        {"items": obj({"a": STR})},
        {"items": obj({"a": STR, "b": STR})},
        None,
    ),
    (
        "items object loses property",
        {"items": obj({"a": STR, "b": STR})},
        {"items": obj({"a": STR})},
        "#/items/properties/b: property removed",
    ),
    (
        "items enum narrowed",
        {"items": {"enum": ["NIF", "NIE"]}},
        {"items": {"enum": ["NIF"]}},
        "#/items: enum value(s) removed",
    ),
    (
        "prefixItems entry tightened",
        {"prefixItems": [STR]},
        {"prefixItems": [{"type": "string", "maxLength": 3}]},
        "#/prefixItems/0: maxLength 3 added",
    ),
    (
        "prefixItems entry loosened",
        {"prefixItems": [{"type": "string", "maxLength": 3}]},
        {"prefixItems": [STR]},
        None,
    ),
    # $defs and $ref
    (
        "definition property removed",
        {"$defs": {"i": obj({"a": STR, "b": STR})}},
        {"$defs": {"i": obj({"a": STR})}},
        "#/$defs/i/properties/b: property removed",
    ),
    (
        "definition gains optional property",
        {"$defs": {"i": obj({"a": STR})}},
        {"$defs": {"i": obj({"a": STR, "b": STR})}},
        None,
    ),
    ("definition removed", {"$defs": {"i": STR}}, {"$defs": {}}, "#/$defs/i: definition removed"),
    ("definition added", {"$defs": {}}, {"$defs": {"i": STR}}, None),
    (
        "ref changed",
        {"items": {"$ref": "#/$defs/a"}},
        {"items": {"$ref": "#/$defs/b"}},
        "#/items: $ref changed",
    ),
    ("ref unchanged", {"items": {"$ref": "#/$defs/a"}}, {"items": {"$ref": "#/$defs/a"}}, None),
    # keywords the checker does not analyse, and annotations
    ("allOf added", {}, {"allOf": [STR]}, "#/allOf: keyword added (not analysed"),
    (
        "anyOf changed",
        {"anyOf": [STR]},
        {"anyOf": [{"type": "integer"}]},
        "#/anyOf: changed (not analysed",
    ),
    ("id changed", {"$id": "https://x/v1.json"}, {"$id": "https://x/v2.json"}, "#/$id: changed"),
    (
        "annotations edited",
        {"title": "a", "description": "b", "examples": [1], "$comment": "c"},
        {
            "title": "A",
            "description": "B",
            "examples": [2],
            "$comment": "C",
            "deprecated": True,
            "default": 3,
        },
        None,
    ),
    # boolean schemas
    ("true narrowed to false", True, False, "#/not: keyword added"),
    ("false widened to true", False, True, None),
    ("schema replaced by true", obj({"a": STR}), True, "#/properties/a: property removed"),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [pytest.param(old, new, expected, id=case) for case, old, new, expected in CASES],
)
def test_rule(old: Any, new: Any, expected: str | None) -> None:
    """Each row: breaking changes are reported at their JSON path, compatible ones are not."""
    problems = incompatibilities(old, new)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in problem for problem in problems), problems


def test_identical_schema_is_compatible() -> None:
    """A schema compared with itself has nothing to report."""
    schema = obj(
        {"a": STR, "b": {"type": "array", "items": {"$ref": "#/$defs/i"}, "minItems": 1}},
        required=["a"],
        **{"$defs": {"i": obj({"x": {"enum": ["NIF"]}})}},
    )
    assert incompatibilities(schema, schema) == []


def test_every_breaking_change_is_listed() -> None:
    """Several breaking edits in one schema are all reported, each with its own path."""
    old = obj(
        {
            "a": STR,
            "b": {"type": "string", "maxLength": 10},
            "c": {"type": "array", "items": obj({"t": {"enum": ["NIF", "NIE"]}})},
        }
    )
    new = obj(
        {
            "b": {"type": "string", "maxLength": 5},
            "c": {"type": "array", "items": obj({"t": {"enum": ["NIF"]}})},
            "d": STR,
        },
        required=["d"],
    )
    problems = incompatibilities(old, new)
    assert len(problems) == 4, problems
    assert sorted(p.split(":")[0] for p in problems) == [
        "#/properties/a",
        "#/properties/b",
        "#/properties/c/items/properties/t",
        "#/properties/d",
    ]


def test_property_names_are_escaped_in_paths() -> None:
    """A property name with ``/`` or ``~`` keeps the JSON pointer unambiguous."""
    problems = incompatibilities(obj({"a/b~c": STR}), obj({}))
    assert problems == ["#/properties/a~1b~0c: property removed"]


def test_rejects_something_that_is_not_a_schema() -> None:
    """A list or a string is not a schema; saying so beats comparing garbage."""
    with pytest.raises(TypeError):
        incompatibilities(["not", "a", "schema"], {})  # type: ignore[arg-type]


# --- direction: who writes and who reads the schema -----------------------------------

NULLABLE_STR: dict[str, Any] = {"type": ["null", "string"]}

# (case id, old, new, breaks a request?, breaks a response?)
DIRECTED: list[tuple[str, Any, Any, bool, bool]] = [
    ("property removed", obj({"a": STR, "b": STR}), obj({"a": STR}), True, True),
    ("became required", obj({"a": STR}), obj({"a": STR}, required=["a"]), True, False),
    (
        "no longer required",
        obj({"a": STR}, required=["a"]),
        obj({"a": STR}),
        False,
        True,
    ),
    ("type widened to nullable", obj({"a": STR}), obj({"a": NULLABLE_STR}), False, True),
    ("type narrowed from nullable", obj({"a": NULLABLE_STR}), obj({"a": STR}), True, False),
    ("type changed", obj({"a": STR}), obj({"a": {"type": "integer"}}), True, True),
    ("maxLength added", obj({"a": STR}), obj({"a": {**STR, "maxLength": 5}}), True, False),
    ("enum value added", {"enum": ["a"]}, {"enum": ["a", "b"]}, False, False),
    ("enum value removed", {"enum": ["a", "b"]}, {"enum": ["a"]}, True, False),
    ("optional property added", obj({"a": STR}), obj({"a": STR, "b": STR}), False, False),
]


@pytest.mark.parametrize(
    ("old", "new", "request_breaks", "response_breaks"),
    [case[1:] for case in DIRECTED],
    ids=[case[0] for case in DIRECTED],
)
def test_a_change_breaks_requests_or_responses_by_who_reads_them(
    old: Any, new: Any, request_breaks: bool, response_breaks: bool
) -> None:
    assert bool(incompatibilities(old, new, direction="request")) is request_breaks
    assert bool(incompatibilities(old, new, direction="response")) is response_breaks


def test_events_keep_their_rules_whatever_the_rest_directions_add() -> None:
    """A bus consumer must cope with a widened type; losing a required field breaks it."""
    assert incompatibilities(obj({"a": STR}), obj({"a": NULLABLE_STR})) == []
    assert incompatibilities(obj({"a": STR}, required=["a"]), obj({"a": STR})) == [
        "#/properties/a: no longer required (consumers rely on it)"
    ]
