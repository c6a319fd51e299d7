"""tramitador: incidencias of an expediente (a notification or a payment another service
could not make), and the fees staff assessed for it.

Revision ID: tramitador_0005
Revises: tramitador_0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "tramitador_0005"
down_revision = "tramitador_0004"
branch_labels = None
depends_on = None

SCHEMA = "tramitador"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "incidencias",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("expediente_id", UUID(as_uuid=False), nullable=False),
        sa.Column("solicitud_id", UUID(as_uuid=False), nullable=False),
        sa.Column("origen", sa.String(12), nullable=False),
        sa.Column("codigo", sa.String(40), nullable=False),
        sa.Column("motivo", sa.Text, nullable=False),
        sa.Column("detalles", JSONB, nullable=False, server_default="[]"),
        sa.Column("documento_id", UUID(as_uuid=False)),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("tramite_id", UUID(as_uuid=False)),
        sa.Column(
            "creada_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("resuelta_at", sa.DateTime(timezone=True)),
        sa.Column("resuelta_por", sa.String(200)),
        sa.CheckConstraint("origen IN ('notificacion', 'pago')", name="ck_incidencias_origen"),
        sa.CheckConstraint("estado IN ('abierta', 'resuelta')", name="ck_incidencias_estado"),
        sa.UniqueConstraint("tenant_id", "solicitud_id", name="uq_incidencias_solicitud"),
        schema=SCHEMA,
    )
    op.create_index("ix_incidencias_expediente", "incidencias", ["expediente_id"], schema=SCHEMA)
    enable_tenant_rls(SCHEMA, "incidencias")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."incidencias" TO "{role}"')
    op.add_column("expedientes", sa.Column("importes", JSONB), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("expedientes", "importes", schema=SCHEMA)
    op.drop_table("incidencias", schema=SCHEMA)
