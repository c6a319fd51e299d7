"""The table of justificantes: where the receipt of each asiento stands."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID

from services.registro.asientos.models import asientos
from services.registro.metadata import metadata

# The receipt of each asiento, issued by the repositorio (one row per asiento; the
# asiento itself stays untouched, asientos are insert-only).
justificantes = Table(
    "justificantes",
    metadata,
    Column("asiento_id", UUID(as_uuid=False), ForeignKey(asientos.c.id), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("estado", String(10), nullable=False),
    # Which attempt the current request is: a failed one may be asked for again.
    Column("intento", Integer, nullable=False),
    Column("solicitud_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("solicitado_en", DateTime(timezone=True), nullable=False),
    Column("documento_id", UUID(as_uuid=False)),
    Column("version", Integer),
    Column("csv", String(29)),
    Column("url_verificacion", String(2048)),
    Column("emitido_en", DateTime(timezone=True)),
    Column("motivo", Text),
    Column("codigo", String(100)),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
)
