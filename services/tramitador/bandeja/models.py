"""Tables of the worklist: who belongs to which unit of the council."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from services.tramitador.metadata import metadata

miembros_unidad = Table(
    "miembros_unidad",
    metadata,
    Column("tenant_id", String(5), primary_key=True),
    Column("unidad", String(100), primary_key=True),
    Column("usuario", String(200), primary_key=True),
)
