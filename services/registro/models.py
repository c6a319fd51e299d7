"""Tables of the registro schema (the service's own; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.kernel_tables import kernel_tables

SCHEMA = "registro"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)

asientos = Table(
    "asientos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("tipo", String(10), nullable=False),
    Column("anio", Integer, nullable=False),
    Column("secuencia", Integer, nullable=False),
    Column("numero", String(20), nullable=False),
    Column("fecha_registro", DateTime(timezone=True), nullable=False),
    Column("resumen", String(240), nullable=False),
    Column("unidad_destino", String(9), nullable=False),
    Column("procedimiento", String(50)),
    Column("interesados", JSONB, nullable=False),
    Column("registrado_por", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "tipo", "anio", "secuencia", name="uq_asientos_numero"),
)
