"""Every table of the registro schema, gathered into its one ``metadata``.

Each feature defines its tables in its own ``models.py`` on the shared ``metadata``
(``metadata.py``); importing this module imports them all, so ``metadata`` never
depends on what was imported before. ``SCHEMA`` and ``kernel`` are what the service
catalogue and the migrations read.
"""

from __future__ import annotations

from services.registro.asientos.models import anulaciones, asientos
from services.registro.intercambios.models import intercambios
from services.registro.justificantes.models import justificantes
from services.registro.libro.models import exportaciones
from services.registro.metadata import SCHEMA, kernel, metadata
from services.registro.oficinas.models import libros, numeracion, oficinas
from services.registro.representaciones.models import representaciones
from services.registro.sellos_tiempo.models import sellos_tiempo

__all__ = [
    "SCHEMA",
    "anulaciones",
    "asientos",
    "exportaciones",
    "intercambios",
    "justificantes",
    "kernel",
    "libros",
    "metadata",
    "numeracion",
    "oficinas",
    "representaciones",
    "sellos_tiempo",
]
