"""The tramitador's schema and the one metadata every feature's tables join."""

from __future__ import annotations

from sqlalchemy import MetaData

from services.common.kernel_tables import kernel_tables

__all__ = ["SCHEMA", "kernel", "metadata"]

SCHEMA = "tramitador"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)
