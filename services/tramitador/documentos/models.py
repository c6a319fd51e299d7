"""Tables of the expediente's documents."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

from services.tramitador.metadata import metadata

documentos = Table(
    "documentos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("expediente_id", UUID(as_uuid=False), nullable=False),
    Column("plantilla", String(60)),
    Column("titulo", String(300), nullable=False),
    Column("origen", String(10), nullable=False),
    Column("estado", String(12), nullable=False),
    Column("documento_id", UUID(as_uuid=False)),
    Column("solicitud_id", UUID(as_uuid=False)),
    Column("csv", String(40)),
    Column("url_verificacion", Text),
    Column("motivo", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_documentos_expediente", "expediente_id"),
    Index("ix_documentos_solicitud", "solicitud_id"),
)
