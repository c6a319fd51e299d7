"""notificaciones: the tramitador's commands wait for the repositorio's answer about their
document (``consultas``), and a notification keeps the CSV of the document it notifies.

Revision ID: notificaciones_0005
Revises: notificaciones_0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "notificaciones_0005"
down_revision = "notificaciones_0004"
branch_labels = None
depends_on = None

SCHEMA = "notificaciones"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "consultas",
        sa.Column("tenant_id", sa.String(5), primary_key=True),
        sa.Column("solicitud_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("documento_id", UUID(as_uuid=False), nullable=False),
        sa.Column("datos", JSONB, nullable=False),
        sa.Column("emisor", sa.String(200), nullable=False),
        sa.Column("estado", sa.String(12), nullable=False),
        sa.Column("creada_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("atendida_en", sa.DateTime(timezone=True)),
        sa.CheckConstraint("estado IN ('consultando', 'atendida')", name="ck_consultas_estado"),
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "consultas")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."consultas" TO "{role}"')
    op.add_column("notificaciones", sa.Column("documento_csv", sa.String(29)), schema=SCHEMA)
    op.add_column("notificaciones", sa.Column("documento_url", sa.Text), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("notificaciones", "documento_url", schema=SCHEMA)
    op.drop_column("notificaciones", "documento_csv", schema=SCHEMA)
    op.drop_table("consultas", schema=SCHEMA)
