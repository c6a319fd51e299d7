"""repositorio: kernel tables, documentos and their versiones.

Revision ID: repositorio_0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import (
    create_kernel_tables_v1,
    enable_tenant_rls,
    grant_app_role,
    migration_attr,
)

revision = "repositorio_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "repositorio"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "documentos",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("identificador", sa.String(48), nullable=False),
        sa.Column("organo", sa.String(9), nullable=False),
        sa.Column("creado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("creado_por", sa.String(255), nullable=False),
        sa.UniqueConstraint("tenant_id", "identificador", name="uq_documentos_identificador"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_documentos_tenant_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "versiones",
        sa.Column("documento_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("tamano", sa.BigInteger, nullable=False),
        sa.Column("mime", sa.String(255), nullable=False),
        sa.Column("nombre", sa.String(255), nullable=False),
        sa.Column("formato", sa.String(10), nullable=False),
        sa.Column("metadatos", JSONB, nullable=False),
        sa.Column("almacenado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("almacenado_por", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "documento_id"],
            [f"{SCHEMA}.documentos.tenant_id", f"{SCHEMA}.documentos.id"],
            name="fk_versiones_documento",
        ),
        sa.CheckConstraint("version >= 1", name="ck_versiones_version"),
        sa.CheckConstraint("tamano > 0", name="ck_versiones_tamano"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="ck_versiones_sha256"),
        schema=SCHEMA,
    )
    # Which versions hold a given content (dedupe reports, integrity sweeps).
    op.create_index(
        "ix_versiones_tenant_sha256", "versiones", ["tenant_id", "sha256"], schema=SCHEMA
    )
    enable_tenant_rls(SCHEMA, "documentos")
    enable_tenant_rls(SCHEMA, "versiones")
    create_kernel_tables_v1(SCHEMA, role)
    grant_app_role(SCHEMA, role)
    # Documents are evidence: the services may only add documentos and versiones.
    for table in ("documentos", "versiones"):
        op.execute(f'REVOKE UPDATE, DELETE ON "{SCHEMA}"."{table}" FROM "{role}"')


def downgrade() -> None:
    op.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
