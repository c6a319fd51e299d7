"""plataforma: the app role and the registry of entidades locales.

Revision ID: plataforma_0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations_support import ensure_app_role_v1, migration_attr

revision = "plataforma_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "plataforma"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    ensure_app_role_v1(role, migration_attr("app_password"))
    op.create_table(
        "tenants",
        sa.Column("ine_code", sa.String(5), primary_key=True),
        sa.Column("nombre", sa.String(200), nullable=False),
        sa.Column("dir3", sa.String(21), nullable=False),
        sa.Column("activo", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("ine_code ~ '^[0-9]{5}$'", name="ck_tenants_ine_code"),
        schema=SCHEMA,
    )
    # Services only read the registry; the CLI manages it as the owner.
    op.execute(f'GRANT USAGE ON SCHEMA "{SCHEMA}" TO "{role}"')
    op.execute(f'GRANT SELECT ON "{SCHEMA}"."tenants" TO "{role}"')


def downgrade() -> None:
    op.drop_table("tenants", schema=SCHEMA)
