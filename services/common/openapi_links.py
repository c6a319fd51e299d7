"""OpenAPI links from an operation that creates a resource to the operations on it.

A client, and the stateful phase of the fuzzing in the suite, learn from them which
field of the answer names the created resource in the routes that act on it, instead
of guessing it from ``Location``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["enlaces_a"]


def _operation_ref(operacion: str) -> str:
    method, path = operacion.split(" ", 1)
    pointer = path.replace("~", "~0").replace("/", "~1")
    return f"#/paths/{pointer}/{method.lower()}"


def enlaces_a(parametro: str, valor: str, *, status: int = 201, **operaciones: str) -> Any:
    """The ``openapi_extra`` of a creating route: a link per ``name="METHOD /path"``,
    passing ``valor`` (a runtime expression, ``$response.body#/id``) as ``parametro``."""
    links = {
        nombre: {"operationRef": _operation_ref(operacion), "parameters": {parametro: valor}}
        for nombre, operacion in operaciones.items()
    }
    return {"responses": {str(status): {"links": links}}}
