"""REST models the registro's features share.

``Motivo`` is the one body of every irreversible act staff explain (annulling an
asiento, closing an oficina or a libro, revoking a representation, rejecting an
exchange): a reason is required, and a blank one is refused like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Motivo", "TextoMotivo", "no_en_blanco"]

# The reason itself; a body that shows an example names it again with ``Field(examples=...)``.
TextoMotivo = Annotated[str, Field(min_length=1, max_length=500)]


def no_en_blanco(value: str) -> str:
    """A required text without its surrounding spaces; only spaces is no text at all."""
    stripped = value.strip()
    if not stripped:
        raise ValueError("no puede estar en blanco")
    return stripped


class Motivo(BaseModel):
    """Why staff do what they do (kept with the record and in the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    motivo: TextoMotivo

    @field_validator("motivo")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("el motivo no puede estar en blanco")
        return stripped
