"""pagos: the carta de pago and justificante de pago asked of the repositorio.

Revision ID: pagos_0003
Revises: pagos_0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "pagos_0003"
down_revision = "pagos_0002"
branch_labels = None
depends_on = None

SCHEMA = "pagos"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "documentos",
        sa.Column("solicitud_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("liquidacion_id", UUID(as_uuid=False), nullable=False),
        sa.Column("tipo", sa.String(20), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("documento_id", UUID(as_uuid=False)),
        sa.Column("csv", sa.String(29)),
        sa.Column("url_verificacion", sa.Text),
        sa.Column("motivo", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("resuelto_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["liquidacion_id"], [f"{SCHEMA}.liquidaciones.id"], name="fk_documentos_liquidacion"
        ),
        sa.CheckConstraint(
            "tipo IN ('carta_de_pago', 'justificante_pago')", name="ck_documentos_tipo"
        ),
        sa.CheckConstraint(
            "estado IN ('pendiente', 'emitido', 'fallido')", name="ck_documentos_estado"
        ),
        sa.CheckConstraint(
            "estado <> 'emitido' OR (csv IS NOT NULL AND documento_id IS NOT NULL)",
            name="ck_documentos_emitido",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_documentos_liquidacion_tipo",
        "documentos",
        ["tenant_id", "liquidacion_id", "tipo"],
        unique=True,
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "documentos")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."documentos" TO "{role}"')


def downgrade() -> None:
    op.drop_table("documentos", schema=SCHEMA)
