"""Every table of the tramitador schema, gathered on one metadata.

Each feature declares its own tables (``<feature>/models.py``); this module imports
them all so the schema's metadata, and what the composition root reads from it
(``SCHEMA``, ``kernel``), is complete.
"""

from __future__ import annotations

from services.tramitador.bandeja.models import miembros_unidad
from services.tramitador.calendario.models import festivos_locales
from services.tramitador.documentos.models import documentos
from services.tramitador.eni.models import anexos, archivo, foliado, indices
from services.tramitador.expedientes.models import (
    expedientes,
    historial,
    incidencias,
    plazos,
    tramites,
)
from services.tramitador.metadata import SCHEMA, kernel, metadata
from services.tramitador.procedimientos.models import procedimiento_versiones

__all__ = [
    "SCHEMA",
    "anexos",
    "archivo",
    "documentos",
    "expedientes",
    "festivos_locales",
    "foliado",
    "historial",
    "incidencias",
    "indices",
    "kernel",
    "metadata",
    "miembros_unidad",
    "plazos",
    "procedimiento_versiones",
    "tramites",
]
