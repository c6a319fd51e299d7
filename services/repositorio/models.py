"""Tables of the repositorio schema (the service's own; no other service reads them).

A documento is never edited: a change is a new row in ``versiones``, and the
bytes of every version stay in the blob store under their SHA-256. An
``emisiones`` row (``emision/models.py``) follows one issuing of a version (CSV,
stamp, seal) to the new version it produced, and answers the public download by CSV.
This module gathers every table into the one ``metadata``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.repositorio.emision.models import DOCUMENTO_EMITIDO_FN, emisiones
from services.repositorio.metadata import SCHEMA, kernel, metadata

__all__ = [
    "DOCUMENTO_EMITIDO_FN",
    "SCHEMA",
    "documentos",
    "emisiones",
    "kernel",
    "metadata",
    "versiones",
]

documentos = Table(
    "documentos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("identificador", String(48), nullable=False),
    Column("organo", String(9), nullable=False),
    Column("creado_en", DateTime(timezone=True), nullable=False),
    Column("creado_por", String(255), nullable=False),
    UniqueConstraint("tenant_id", "identificador", name="uq_documentos_identificador"),
    UniqueConstraint("tenant_id", "id", name="uq_documentos_tenant_id"),
)

versiones = Table(
    "versiones",
    metadata,
    Column("documento_id", UUID(as_uuid=False), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("tamano", BigInteger, nullable=False),
    Column("mime", String(255), nullable=False),
    Column("nombre", String(255), nullable=False),
    Column("formato", String(10), nullable=False),
    Column("metadatos", JSONB, nullable=False),
    Column("almacenado_en", DateTime(timezone=True), nullable=False),
    Column("almacenado_por", String(255), nullable=False),
    # With the tenant in the key, a version can only ever belong to its tenant's documento.
    ForeignKeyConstraint(
        ["tenant_id", "documento_id"],
        [f"{SCHEMA}.documentos.tenant_id", f"{SCHEMA}.documentos.id"],
        name="fk_versiones_documento",
    ),
    # Which versions hold a given content (dedupe reports, integrity sweeps).
    Index("ix_versiones_tenant_sha256", "tenant_id", "sha256"),
)
