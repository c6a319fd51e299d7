"""The repositorio's schema name and the one ``MetaData`` every repositorio table is defined on.

``models.py`` imports every feature's tables, so ``services.repositorio.models.metadata``
holds them all whatever was imported before.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from services.common.kernel_tables import kernel_tables

__all__ = ["SCHEMA", "kernel", "metadata"]

SCHEMA = "repositorio"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)
