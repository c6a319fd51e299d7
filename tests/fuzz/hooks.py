"""Schemathesis hooks (SCHEMATHESIS_HOOKS): how to put bodies of our own media types
on the wire, so that every operation can be called."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/timestamp-query")
def _raw_bytes(ctx: Any, value: Any) -> bytes:
    """An RFC 3161 request is opaque DER: the generated binary string, as it is."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("latin-1", errors="replace")
    return b""
