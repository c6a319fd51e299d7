"""Every table of the tramitador schema, gathered on one metadata.

Each feature declares its own tables (``<feature>/models.py``); this module imports
them all so the schema's metadata, and what the composition root reads from it
(``SCHEMA``, ``kernel``), is complete.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from services.tramitador.calendario.models import festivos_locales
from services.tramitador.expedientes.models import expedientes
from services.tramitador.metadata import SCHEMA, kernel, metadata

__all__ = ["SCHEMA", "expedientes", "festivos_locales", "kernel", "metadata", "procedimientos"]

# The catalogue is shared by every tenant (the state-wide procedures); tenant-specific
# procedures will get their own table with tenant_id and row-level security.
procedimientos = Table(
    "procedimientos",
    metadata,
    Column("codigo", String(50), primary_key=True),
    Column("denominacion", String(255), nullable=False),
    Column("norma", Text, nullable=False),
    Column("sia", String(20)),
    Column("plazo_resolucion_meses", Integer, nullable=False),
    Column("silencio", String(20), nullable=False),
)
