"""notificaciones: the acuse (certificación) of each notification's outcome.

Revision ID: notificaciones_0004
Revises: notificaciones_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "notificaciones_0004"
down_revision = "notificaciones_0003"
branch_labels = None
depends_on = None

SCHEMA = "notificaciones"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "acuses",
        sa.Column(
            "notificacion_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.notificaciones.id"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("solicitud_id", UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("hito", sa.String(25), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("documento_id", UUID(as_uuid=False)),
        sa.Column("version", sa.Integer),
        sa.Column("csv", sa.String(29)),
        sa.Column("url_verificacion", sa.Text),
        sa.Column("motivo", sa.Text),
        sa.Column("solicitado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actualizado_en", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "estado IN ('pendiente', 'emitido', 'fallido')", name="ck_acuses_estado"
        ),
        sa.CheckConstraint(
            "estado <> 'emitido' OR (csv IS NOT NULL AND documento_id IS NOT NULL)",
            name="ck_acuses_emitido_completo",
        ),
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "acuses")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."acuses" TO "{role}"')


def downgrade() -> None:
    op.drop_table("acuses", schema=SCHEMA)
