"""The registro's schema name and the one ``MetaData`` every registro table is defined on.

Feature packages define their tables on this ``metadata``; ``models.py`` imports them
all, so whoever reads ``services.registro.models.metadata`` sees every table, whatever
was imported before.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from services.common.kernel_tables import kernel_tables

__all__ = ["SCHEMA", "kernel", "metadata"]

SCHEMA = "registro"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)
