"""Tables of the expedientes."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.tramitador.metadata import metadata

expedientes = Table(
    "expedientes",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("anio", Integer, nullable=False),
    Column("secuencia", Integer, nullable=False),
    Column("numero", String(20), nullable=False),
    Column("procedimiento", String(50), nullable=False),
    Column("estado", String(20), nullable=False),
    Column("asiento_id", UUID(as_uuid=False), nullable=False),
    Column("asiento_numero", String(20), nullable=False),
    Column("fecha_inicio", DateTime(timezone=True), nullable=False),
    Column("interesados", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "anio", "secuencia", name="uq_expedientes_numero"),
    UniqueConstraint("tenant_id", "asiento_id", name="uq_expedientes_asiento"),
)
