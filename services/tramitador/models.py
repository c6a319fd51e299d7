"""Tables of the tramitador schema."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.kernel_tables import kernel_tables

SCHEMA = "tramitador"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)

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

expedientes = Table(
    "expedientes",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("anio", Integer, nullable=False),
    Column("secuencia", Integer, nullable=False),
    Column("numero", String(20), nullable=False),
    Column("procedimiento", String(50), ForeignKey(procedimientos.c.codigo), nullable=False),
    Column("estado", String(20), nullable=False),
    Column("asiento_id", UUID(as_uuid=False), nullable=False),
    Column("asiento_numero", String(20), nullable=False),
    Column("fecha_inicio", DateTime(timezone=True), nullable=False),
    Column("interesados", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "anio", "secuencia", name="uq_expedientes_numero"),
    UniqueConstraint("tenant_id", "asiento_id", name="uq_expedientes_asiento"),
)
