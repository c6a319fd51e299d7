"""The table of emisiones: one issuing of a version, from its request to the version it made."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.repositorio.metadata import SCHEMA, metadata

emisiones = Table(
    "emisiones",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("documento_id", UUID(as_uuid=False), nullable=False),
    Column("version_origen", Integer, nullable=False),
    Column("estado", String(10), nullable=False),
    Column("csv", String(29)),
    Column("url_verificacion", String(2048)),
    Column("version_emitida", Integer),
    Column("sha256", String(64)),
    Column("firmante", String(500)),
    Column("sello_tiempo", DateTime(timezone=True)),
    Column("codigo", String(50)),
    Column("motivo", String(1000)),
    Column("solicitud_id", UUID(as_uuid=False)),
    Column("solicitante", String(100)),
    Column("referencia", JSONB),
    Column("creado_en", DateTime(timezone=True), nullable=False),
    Column("creado_por", String(255), nullable=False),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
    Column("emitida_en", DateTime(timezone=True)),
    ForeignKeyConstraint(
        ["tenant_id", "documento_id"],
        [f"{SCHEMA}.documentos.tenant_id", f"{SCHEMA}.documentos.id"],
        name="fk_emisiones_documento",
    ),
    ForeignKeyConstraint(
        ["documento_id", "version_origen"],
        [f"{SCHEMA}.versiones.documento_id", f"{SCHEMA}.versiones.version"],
        name="fk_emisiones_version_origen",
    ),
    ForeignKeyConstraint(
        ["documento_id", "version_emitida"],
        [f"{SCHEMA}.versiones.documento_id", f"{SCHEMA}.versiones.version"],
        name="fk_emisiones_version_emitida",
    ),
    # A CSV names one document in the whole installation, whatever its tenant.
    Index("uq_emisiones_csv", "csv", unique=True, postgresql_where=text("csv IS NOT NULL")),
    # A command is carried out once per requester's solicitud, whatever its redeliveries.
    Index(
        "uq_emisiones_solicitud",
        "tenant_id",
        "solicitante",
        "solicitud_id",
        unique=True,
        postgresql_where=text("solicitud_id IS NOT NULL"),
    ),
    # Whether a version is itself the result of an emisión (it is not issued twice).
    Index(
        "uq_emisiones_version_emitida",
        "tenant_id",
        "documento_id",
        "version_emitida",
        unique=True,
        postgresql_where=text("version_emitida IS NOT NULL"),
    ),
    Index("ix_emisiones_documento", "tenant_id", "documento_id"),
)


# SECURITY DEFINER function of migration 0002: the issued version a CSV names, in any tenant.
# The one way across tenants; it answers only tenant_id, documento_id, version and sha256.
DOCUMENTO_EMITIDO_FN = f"{SCHEMA}.documento_emitido"
