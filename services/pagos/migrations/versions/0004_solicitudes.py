"""pagos: the tramitador's solicitud on the liquidación it asked for.

A liquidación issued by the command ``tramitador.pago.requerir.v1`` keeps the
command's ``solicitud_id`` and ``solicitante``: the unique index makes a
redelivered command answer the same liquidación, and ``pago.completado`` carries
them back so the requester can settle its solicitud.

Revision ID: pagos_0004
Revises: pagos_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "pagos_0004"
down_revision = "pagos_0003"
branch_labels = None
depends_on = None

SCHEMA = "pagos"


def upgrade() -> None:
    op.add_column("liquidaciones", sa.Column("solicitud_id", UUID(as_uuid=False)), schema=SCHEMA)
    op.add_column("liquidaciones", sa.Column("solicitante", sa.String(100)), schema=SCHEMA)
    op.create_index(
        "uq_liquidaciones_solicitud",
        "liquidaciones",
        ["tenant_id", "solicitante", "solicitud_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("solicitud_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_liquidaciones_solicitud", table_name="liquidaciones", schema=SCHEMA)
    op.drop_column("liquidaciones", "solicitante", schema=SCHEMA)
    op.drop_column("liquidaciones", "solicitud_id", schema=SCHEMA)
