"""registro: the justificante of each asiento.

Revision ID: registro_0002
Revises: registro_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "registro_0002"
down_revision = "registro_0001"
branch_labels = None
depends_on = None

SCHEMA = "registro"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "justificantes",
        sa.Column(
            "asiento_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.asientos.id", name="fk_justificantes_asiento"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("intento", sa.Integer, nullable=False),
        sa.Column("solicitud_id", UUID(as_uuid=False), nullable=False),
        sa.Column("solicitado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("documento_id", UUID(as_uuid=False)),
        sa.Column("version", sa.Integer),
        sa.Column("csv", sa.String(29)),
        sa.Column("url_verificacion", sa.String(2048)),
        sa.Column("emitido_en", sa.DateTime(timezone=True)),
        sa.Column("motivo", sa.Text),
        sa.Column("codigo", sa.String(100)),
        sa.Column("actualizado_en", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("solicitud_id", name="uq_justificantes_solicitud"),
        sa.CheckConstraint(
            "estado IN ('pendiente', 'emitido', 'fallido')", name="ck_justificantes_estado"
        ),
        sa.CheckConstraint("intento >= 1", name="ck_justificantes_intento"),
        # An issued justificante always says which document, version and CSV it is.
        sa.CheckConstraint(
            "estado <> 'emitido' OR (documento_id IS NOT NULL AND version IS NOT NULL "
            "AND csv IS NOT NULL AND url_verificacion IS NOT NULL)",
            name="ck_justificantes_emitido",
        ),
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "justificantes")
    # Granted on this table alone: grant_app_role would grant on every table of the
    # schema and so undo 0001's revokes (asientos and audit_log are insert-only).
    # No DELETE: the row is the trace of what was asked for and what was issued.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."justificantes" TO "{role}"')
    # 0001 granted on every table after creating the kernel tables, which undid their
    # revoke: the audit trail becomes append-only again, as create_kernel_tables_v1 meant.
    op.execute(f'REVOKE UPDATE, DELETE ON "{SCHEMA}"."audit_log" FROM "{role}"')


def downgrade() -> None:
    # The audit trail stays append-only: reopening it would be no undo but a hole.
    op.drop_table("justificantes", schema=SCHEMA)
