"""registro: the oficina of the registro electrónico, where the sede's asientos are made.

Revision ID: registro_0011
Revises: registro_0010
Create Date: 2026-11-23

An entity's Registro Electrónico General is an oficina with its own DIR3 code. Marking
it lets a citizen's asiento, which names no oficina, be registered there (and numbered
there when the entity numbers per oficina). At most one per entity.
"""

import sqlalchemy as sa
from alembic import op

revision = "registro_0011"
down_revision = "registro_0010"
branch_labels = None
depends_on = None

SCHEMA = "registro"


def upgrade() -> None:
    op.add_column(
        "oficinas",
        sa.Column("electronica", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.execute(
        f'CREATE UNIQUE INDEX ux_oficinas_electronica ON "{SCHEMA}".oficinas (tenant_id) '
        "WHERE electronica"
    )


def downgrade() -> None:
    op.execute(f'DROP INDEX "{SCHEMA}".ux_oficinas_electronica')
    op.drop_column("oficinas", "electronica", schema=SCHEMA)
