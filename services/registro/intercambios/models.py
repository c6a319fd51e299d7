"""The table of exchanges received: the file as it came, and what became of it."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.registro.asientos.models import asientos
from services.registro.metadata import metadata

intercambios = Table(
    "intercambios",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("identificador_intercambio", String(33), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("codigo_entidad_origen", String(21), nullable=False),
    Column("numero_registro_origen", String(20), nullable=False),
    Column("fecha_registro_origen", DateTime(timezone=True), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Column("datos", JSONB, nullable=False),
    Column("anexos", JSONB, nullable=False),
    Column("motivo_rechazo", Text),
    Column("asiento_id", UUID(as_uuid=False), ForeignKey(asientos.c.id)),
    Column("recibido_por", String(255), nullable=False),
    Column("recibido_en", DateTime(timezone=True), nullable=False),
    Column("decidido_por", String(255)),
    Column("decidido_en", DateTime(timezone=True)),
    CheckConstraint("estado IN ('recibido', 'aceptado', 'rechazado')"),
)
# An exchange is taken once, unless it was refused (then the origin may send it again).
Index(
    "ux_intercambios_identificador",
    intercambios.c.tenant_id,
    intercambios.c.identificador_intercambio,
    unique=True,
    postgresql_where=intercambios.c.estado != "rechazado",
)
Index(
    "ix_intercambios_tenant_recibido",
    intercambios.c.tenant_id,
    intercambios.c.recibido_en.desc(),
    intercambios.c.id.desc(),
)
