"""The table of representaciones: recorded, never deleted; a revocation is a column set."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID

from services.registro.metadata import metadata

representaciones = Table(
    "representaciones",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("poderdante_tipo", String(10), nullable=False),
    Column("poderdante", String(17), nullable=False),
    Column("poderdante_nombre", String(160), nullable=False),
    Column("representante_tipo", String(10), nullable=False),
    Column("representante", String(17), nullable=False),
    Column("representante_nombre", String(160), nullable=False),
    Column("vigente_desde", Date, nullable=False),
    Column("vigente_hasta", Date),
    Column("documento", String(160)),
    Column("registrada_por", String(255), nullable=False),
    Column("registrada_en", DateTime(timezone=True), nullable=False),
    Column("revocada_por", String(255)),
    Column("revocada_en", DateTime(timezone=True)),
    Column("motivo_revocacion", Text),
    CheckConstraint("vigente_hasta IS NULL OR vigente_hasta >= vigente_desde"),
    Index("ix_representaciones_representante", "tenant_id", "representante", "poderdante"),
    Index("ix_representaciones_poderdante", "tenant_id", "poderdante"),
)
