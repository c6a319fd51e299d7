"""The example PDF of the upload routes' OpenAPI documents.

A client (and the fuzzing in the suite) needs one request it knows to be valid: a real,
one-page PDF, in ASCII so that it can travel as a JSON string in the document.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EJEMPLO_PDF", "ejemplo_multipart"]

EJEMPLO_PDF = (Path(__file__).parent / "ejemplo.pdf").read_text(encoding="ascii")


def ejemplo_multipart(**campos: str) -> dict[str, object]:
    """The OpenAPI ``requestBody`` example of a multipart upload of the example PDF."""
    return {"content": {"multipart/form-data": {"example": {"file": EJEMPLO_PDF, **campos}}}}
