"""The table of export jobs of the libro: their progress, and the file once done."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID

from services.registro.metadata import metadata

exportaciones = Table(
    "exportaciones",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("tipo", String(10), nullable=False),
    Column("formato", String(5), nullable=False),
    Column("desde", Date, nullable=False),
    Column("hasta", Date, nullable=False),
    Column("estado", String(10), nullable=False),
    Column("total", Integer),
    Column("hechos", Integer, nullable=False, server_default="0"),
    Column("creado_por", String(255), nullable=False),
    Column("creado_en", DateTime(timezone=True), nullable=False),
    Column("iniciado_en", DateTime(timezone=True)),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
    Column("terminado_en", DateTime(timezone=True)),
    Column("resultado", LargeBinary),
    Column("tamano", Integer),
    Column("error", Text),
)
Index("ix_exportaciones_tenant_creado", exportaciones.c.tenant_id, exportaciones.c.creado_en.desc())
