"""Schemathesis hooks (SCHEMATHESIS_HOOKS): how to put bodies of our own media types
on the wire, so that every operation can be called."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import schemathesis


@schemathesis.serializer("application/timestamp-query", "application/zip")
def _raw_bytes(ctx: Any, value: Any) -> bytes:
    """An RFC 3161 request (opaque DER) or a ZIP: the generated binary string, as it is."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("latin-1", errors="replace")
    return b""


@schemathesis.hook
def before_add_examples(context: Any, examples: list[Any]) -> None:
    """An exported expediente (seeded, its path in FUZZ_ENI_ZIP) is the one body the
    verification accepts that no generator writes: it is the operation's example."""
    operation = context.operation
    if operation is None or (operation.method.upper(), operation.path) != (
        "POST",
        "/api/v1/tramitador/verificaciones",
    ):
        return
    zip_path = os.environ.get("FUZZ_ENI_ZIP")
    if zip_path and Path(zip_path).is_file():
        examples.append(
            operation.Case(body=Path(zip_path).read_bytes(), media_type="application/zip")
        )
