"""The compiled validator (jsonschema-rs) that checks every event first agrees with the
pure-Python one (jsonschema) that names failing fields: on every example, and on each of
them broken field by field (missing, wrong type, bad date-time, uuid and URI)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.contracts import ENVELOPE_FILE, ContractRegistry, path_to_name
from tests.contracts.test_bus_contracts import EXAMPLES, example_files, good_envelope, load_json

_WRONG = (None, 12345, 1.5, True, "x", [], {"z": 1})
_BAD_STRINGS = (
    "2026-13-01T00:00:00Z",
    "2026-02-30T10:00:00+01:00",
    "2026-01-01",
    "not-a-uuid",
    "3fa85f64-5717-4562-b3fc-2c963f66afa",
    "http://[no",
    "",
    "Ñandú",
)


def _variants(node: Any, depth: int = 0) -> Iterator[Any]:
    """``node`` broken once in every place: each key dropped or replaced by wrong values,
    each string by malformed ones, down to nested objects and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            dropped = {k: v for k, v in node.items() if k != key}
            yield dropped
            for wrong in _WRONG:
                yield {**node, key: wrong}
            if depth < 3:
                for broken in _variants(value, depth + 1):
                    yield {**node, key: broken}
    elif isinstance(node, list) and node and depth < 3:
        for broken in _variants(node[0], depth + 1):
            yield [broken, *copy.deepcopy(node[1:])]
    elif isinstance(node, str):
        yield from _BAD_STRINGS


def _python_says(registry: ContractRegistry, key: str, instance: Any) -> bool:
    return not any(True for _ in registry._validator(key).iter_errors(instance))


@pytest.fixture(scope="module")
def registry() -> ContractRegistry:
    return ContractRegistry.load()


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_both_validators_agree_on_an_example_and_on_it_broken(
    registry: ContractRegistry, path: Path
) -> None:
    name = path_to_name(path.parent.relative_to(EXAMPLES).as_posix() + ".json")
    example = load_json(path)
    disagreements = [
        variant
        for variant in [example, *_variants(example)]
        if registry._conforms(name, variant) != _python_says(registry, name, variant)
    ]
    assert disagreements == []


def test_both_validators_agree_on_the_envelope_and_on_it_broken(
    registry: ContractRegistry,
) -> None:
    envelope = good_envelope()
    variants = [envelope, *_variants({k: v for k, v in envelope.items() if k != "data"})]
    disagreements = [
        v
        for v in variants
        if registry._conforms(ENVELOPE_FILE, v) != _python_says(registry, ENVELOPE_FILE, v)
    ]
    assert registry._conforms(ENVELOPE_FILE, envelope)
    assert disagreements == []


def test_a_broken_event_is_still_refused_with_its_field_named(registry: ContractRegistry) -> None:
    data = load_json(EXAMPLES / "registro/asiento-registrado/v1/full.json")
    data["fecha_registro"] = "2026-13-01T00:00:00Z"

    with pytest.raises(Exception, match="fecha_registro"):
        registry.validate("registro.asiento.registrado.v1", data)
