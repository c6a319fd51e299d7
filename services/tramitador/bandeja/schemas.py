"""REST models of the worklist."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class ElementoBandeja(BaseModel):
    """An open trámite of the caller, with its expediente."""

    tramite_id: str
    expediente_id: str
    numero: str
    procedimiento: str
    fase: str
    codigo: str
    nombre: str
    unidad: str | None
    rol: str | None
    persona: str | None
    vencimiento: date | None
    asunto: str | None


class RecuentoBandeja(BaseModel):
    """How many open trámites the caller has, and how many are overdue, per procedure."""

    procedimiento: str
    total: int
    vencidos: int


class Bandeja(BaseModel):
    """One page of the worklist, nearest deadline first; ``next_cursor`` continues it."""

    items: list[ElementoBandeja]
    next_cursor: str | None = None
    total: int | None = Field(default=None, description="Trámites abiertos (con `contar`)")
    vencidos: int | None = None
    por_procedimiento: list[RecuentoBandeja] | None = None


class MiembrosUpdate(BaseModel):
    """The users of one unit (they replace the previous list)."""

    usuarios: list[str] = Field(max_length=500)
