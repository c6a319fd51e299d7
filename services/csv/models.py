"""Tables of the csv schema (the service's own; no other service reads them).

One row per code ever handed out. A code is reserved for an emisión of the
repositorio, becomes ``activo`` when the document is issued (keeping what the
public page shows) and ``anulado`` when the emisión fails; it is never reused.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.kernel_tables import kernel_tables

SCHEMA = "csv"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)

codigos = Table(
    "codigos",
    metadata,
    Column("csv", String(29), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("documento_id", UUID(as_uuid=False), nullable=False),
    Column("version", Integer),
    Column("solicitud_id", UUID(as_uuid=False), nullable=False),
    Column("solicitante", String(100), nullable=False),
    Column("metadatos", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("activado_at", DateTime(timezone=True)),
    Column("anulado_at", DateTime(timezone=True)),
    # A requester's solicitud gets one code, however often its command is delivered.
    Index("uq_codigos_solicitud", "tenant_id", "solicitante", "solicitud_id", unique=True),
)

# SECURITY DEFINER function of migration 0001: an active code's public fields, in any
# tenant. The one way across tenants; the table itself stays under row-level security.
VERIFICAR_FN = f"{SCHEMA}.verificar"
