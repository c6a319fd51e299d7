"""Tables of the catalogue: every version of every procedure definition of a council."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.tramitador.metadata import metadata

procedimiento_versiones = Table(
    "procedimiento_versiones",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("codigo", String(60), nullable=False),
    Column("version", Integer, nullable=False),
    Column("estado", String(12), nullable=False),
    Column("nombre", String(255), nullable=False),
    Column("definicion", JSONB, nullable=False),
    Column("creado_por", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("publicado_at", DateTime(timezone=True)),
    Column("retirado_at", DateTime(timezone=True)),
    UniqueConstraint("tenant_id", "codigo", "version", name="uq_procedimiento_version"),
    Index(
        "uq_procedimiento_publicado",
        "tenant_id",
        "codigo",
        unique=True,
        postgresql_where=text("estado = 'publicado'"),
    ),
)
