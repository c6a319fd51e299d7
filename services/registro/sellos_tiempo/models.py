"""The table of time-stamps: the stamped bytes of each asiento, and its token once sealed."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from services.registro.asientos.models import asientos
from services.registro.metadata import metadata

# One row per asiento (the asiento itself stays insert-only). The app role may not
# UPDATE datos, huella or algoritmo (migration 0008): what was stamped stays.
sellos_tiempo = Table(
    "sellos_tiempo",
    metadata,
    Column("asiento_id", UUID(as_uuid=False), ForeignKey(asientos.c.id), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("intento", Integer, nullable=False),
    Column("solicitud_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("solicitado_en", DateTime(timezone=True), nullable=False),
    Column("algoritmo", String(10), nullable=False),
    Column("datos", LargeBinary, nullable=False),
    Column("huella", String(64), nullable=False),
    Column("token", LargeBinary),
    Column("gen_time", DateTime(timezone=True)),
    Column("serial", String(49)),
    Column("politica", String(200)),
    Column("desfase_ms", BigInteger),
    Column("motivo", Text),
    Column("codigo", String(100)),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "estado IN ('pendiente', 'sellado', 'fallido')", name="ck_sellos_tiempo_estado"
    ),
    # The stamps still to obtain (retried in the background).
    Index(
        "ix_sellos_tiempo_pendientes",
        "tenant_id",
        "solicitado_en",
        postgresql_where=text("estado <> 'sellado'"),
    ),
)
