"""tramitador: each council's local holidays (días inhábiles of its calendar).

Revision ID: tramitador_0003
Revises: tramitador_0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations_support import (
    enable_tenant_rls,
    grant_app_role,
    migration_attr,
    protect_audit_log_v1,
)

revision = "tramitador_0003"
down_revision = "tramitador_0002"
branch_labels = None
depends_on = None

SCHEMA = "tramitador"


def upgrade() -> None:
    op.create_table(
        "festivos_locales",
        sa.Column("tenant_id", sa.String(5), primary_key=True),
        sa.Column("fecha", sa.Date, primary_key=True),
        sa.Column("anio", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "festivos_locales")
    role = migration_attr("app_role") or "consistorio_app"
    grant_app_role(SCHEMA, role)
    protect_audit_log_v1(SCHEMA, role)


def downgrade() -> None:
    op.drop_table("festivos_locales", schema=SCHEMA)
