"""notificaciones: the RFC 3161 time-stamp of every state change.

Revision ID: notificaciones_0003
Revises: notificaciones_0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "notificaciones_0003"
down_revision = "notificaciones_0002"
branch_labels = None
depends_on = None

SCHEMA = "notificaciones"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "sellos",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column(
            "notificacion_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.notificaciones.id"),
            nullable=False,
        ),
        sa.Column("hito", sa.String(25), nullable=False),
        sa.Column("datos", sa.LargeBinary, nullable=False),
        sa.Column("huella", sa.String(64), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("token", sa.LargeBinary),
        sa.Column("gen_time", sa.DateTime(timezone=True)),
        sa.Column("motivo", sa.Text),
        sa.Column("solicitado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actualizado_en", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "estado IN ('pendiente', 'sellado', 'fallido')", name="ck_sellos_estado"
        ),
        sa.CheckConstraint(
            "estado <> 'sellado' OR (token IS NOT NULL AND gen_time IS NOT NULL)",
            name="ck_sellos_sellado_completo",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_sellos_notificacion", "sellos", ["notificacion_id"], schema=SCHEMA)
    enable_tenant_rls(SCHEMA, "sellos")
    op.execute(f'GRANT SELECT, INSERT ON "{SCHEMA}"."sellos" TO "{role}"')
    # What was stamped stays: only the outcome may be written later.
    op.execute(
        f'GRANT UPDATE (estado, token, gen_time, motivo, actualizado_en) ON "{SCHEMA}"."sellos" '
        f'TO "{role}"'
    )


def downgrade() -> None:
    op.drop_table("sellos", schema=SCHEMA)
