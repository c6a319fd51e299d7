"""registro: kernel tables and asientos.

Revision ID: registro_0001
Revises:
Create Date: 2026-11-23
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

revision = "registro_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "registro"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "asientos",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("tipo", sa.String(10), nullable=False),
        sa.Column("anio", sa.Integer, nullable=False),
        sa.Column("secuencia", sa.Integer, nullable=False),
        sa.Column("numero", sa.String(20), nullable=False),
        sa.Column("fecha_registro", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resumen", sa.String(240), nullable=False),
        sa.Column("unidad_destino", sa.String(9), nullable=False),
        sa.Column("procedimiento", sa.String(50)),
        sa.Column("interesados", JSONB, nullable=False),
        sa.Column("registrado_por", sa.String(255), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("tenant_id", "tipo", "anio", "secuencia", name="uq_asientos_numero"),
        sa.CheckConstraint("tipo IN ('entrada', 'salida')", name="ck_asientos_tipo"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_asientos_tenant_fecha", "asientos", ["tenant_id", "fecha_registro"], schema=SCHEMA
    )
    enable_tenant_rls(SCHEMA, "asientos")
    create_kernel_tables_v1(SCHEMA, role)
    grant_app_role(SCHEMA, role)
    # Asientos are never edited or deleted (Ley 39/2015): the services may only add.
    op.execute(f'REVOKE UPDATE, DELETE ON "{SCHEMA}"."asientos" FROM "{role}"')


def downgrade() -> None:
    op.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
