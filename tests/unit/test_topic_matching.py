"""Table-driven checks that topic_matches routes exactly as a RabbitMQ topic exchange."""

from __future__ import annotations

import pytest

from services.common.bus.topic import topic_matches

KEY = "03014.registro.asiento.registrado.v1"

# (pattern, routing key, expected): each row is one rule of RabbitMQ's topic routing.
CASES: list[tuple[str, str, bool]] = [
    # literal words
    (KEY, KEY, True),
    ("03014.registro.asiento.registrado.v2", KEY, False),
    ("03014.registro", KEY, False),
    (KEY + ".extra", KEY, False),
    ("a.b", "a.b", True),
    ("a.b", "a.c", False),
    ("a.b", "b.a", False),
    # ``#`` matches any number of words, including none
    ("#", KEY, True),
    ("#", "a", True),
    ("#", "", True),
    ("*.registro.#", KEY, True),
    ("*.registro.#", "03014.registro", True),
    ("*.registro.#", "03014.tramitador.expediente.abierto.v1", False),
    ("03014.#", KEY, True),
    ("#.v1", KEY, True),
    ("#.v2", KEY, False),
    ("#.registrado.#", KEY, True),
    ("#.registro.asiento.#", KEY, True),
    ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.y.b", True),
    ("a.#.b", "a.x.y.c", False),
    ("#.#", "a.b.c", True),
    ("#.#.#", "", True),
    ("a.#.#.b", "a.b", True),
    # ``*`` matches exactly one word
    ("*", "a", True),
    ("*", "a.b", False),
    ("*", "", False),
    ("*.*", "a.b", True),
    ("*.*", "a", False),
    ("*.registro.*.*.*", KEY, True),
    ("*.registro.*.*", KEY, False),
    ("*.*.*.*.*.*", KEY, False),
    ("*.#", "a", True),
    ("#.*", "a", True),
    ("#.*", "", False),
    ("*.#.*", "a", False),
    ("*.#.*", "a.b", True),
    # wildcards count only as whole words
    ("a*", "ab", False),
    ("a*", "a*", True),
    ("a.#b", "a.x.b", False),
    # empty words between dots are words too
    ("a.*.b", "a..b", True),
    ("a..b", "a..b", True),
    ("a.b", "a..b", False),
    ("a.*", "a.", True),
    # the empty key is zero words
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
]


@pytest.mark.parametrize(("pattern", "routing_key", "expected"), CASES)
def test_topic_matches(pattern: str, routing_key: str, expected: bool) -> None:
    """Each row states one routing rule."""
    assert topic_matches(pattern, routing_key) is expected


def test_long_hash_chain_stays_fast() -> None:
    """Many ``#`` words against a long key must not blow up (no exponential backtracking)."""
    pattern = ".".join(["#", "*"] * 50 + ["z"])
    key = ".".join(["a"] * 200)
    assert topic_matches(pattern, key) is False
    assert topic_matches(pattern, key + ".z") is True
