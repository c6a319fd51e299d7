"""pagos: the bank's Cuaderno 60 cobros, one row per NRC.

Revision ID: pagos_0002
Revises: pagos_0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "pagos_0002"
down_revision = "pagos_0001"
branch_labels = None
depends_on = None

SCHEMA = "pagos"
_RESULTADOS = ("aplicado", "desconocido", "rechazado", "duplicado")


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "cobros",
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("nrc", sa.String(22), nullable=False),
        sa.Column("importacion_id", UUID(as_uuid=False), nullable=False),
        sa.Column("liquidacion_id", UUID(as_uuid=False)),
        sa.Column("referencia", sa.String(12), nullable=False),
        sa.Column("importe_centimos", sa.BigInteger, nullable=False),
        sa.Column("fecha_cobro", sa.Date, nullable=False),
        sa.Column("entidad", sa.String(4), nullable=False),
        sa.Column("oficina", sa.String(4), nullable=False),
        sa.Column("resultado", sa.String(12), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "nrc"),
        sa.CheckConstraint(
            "resultado IN (" + ", ".join(f"'{r}'" for r in _RESULTADOS) + ")",
            name="ck_cobros_resultado",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_cobros_liquidacion", "cobros", ["liquidacion_id"], schema=SCHEMA)
    enable_tenant_rls(SCHEMA, "cobros")
    # Never deleted: an NRC once seen stays, so it is never applied twice.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."cobros" TO "{role}"')


def downgrade() -> None:
    op.drop_table("cobros", schema=SCHEMA)
