"""registro: SICRES 3.0 exchanges received from other registers.

Revision ID: registro_0004
Revises: registro_0003
Create Date: 2026-12-15

An exchange arrives as a Fichero_Intercambio_SICRES_3 and waits, ``recibido``,
until the register office accepts it (it becomes a new entrada of this entity:
``asiento_id``) or rejects it (``motivo_rechazo``). The raw file is kept byte for
byte; the parsed data and the anexos' check results sit beside it as JSON.

An exchange id may come again only after a rejection (the origin corrects and
resends it): the partial unique index allows one open or accepted row per id.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "registro_0004"
down_revision = "registro_0003"
branch_labels = None
depends_on = None

SCHEMA = "registro"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "intercambios",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("identificador_intercambio", sa.String(33), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("codigo_entidad_origen", sa.String(21), nullable=False),
        sa.Column("numero_registro_origen", sa.String(20), nullable=False),
        sa.Column("fecha_registro_origen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("xml", sa.LargeBinary, nullable=False),
        sa.Column("datos", JSONB, nullable=False),
        sa.Column("anexos", JSONB, nullable=False),
        sa.Column("motivo_rechazo", sa.Text),
        sa.Column(
            "asiento_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.asientos.id", name="fk_intercambios_asiento"),
        ),
        sa.Column("recibido_por", sa.String(255), nullable=False),
        sa.Column("recibido_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decidido_por", sa.String(255)),
        sa.Column("decidido_en", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "estado IN ('recibido', 'aceptado', 'rechazado')", name="ck_intercambios_estado"
        ),
        sa.CheckConstraint(
            "(estado = 'aceptado') = (asiento_id IS NOT NULL)", name="ck_intercambios_asiento"
        ),
        sa.CheckConstraint(
            "(estado = 'rechazado') = (motivo_rechazo IS NOT NULL)",
            name="ck_intercambios_rechazo",
        ),
        sa.CheckConstraint(
            "(estado = 'recibido') = (decidido_en IS NULL)", name="ck_intercambios_decision"
        ),
        schema=SCHEMA,
    )
    op.execute(
        f'CREATE UNIQUE INDEX ux_intercambios_identificador ON "{SCHEMA}".intercambios '
        "(tenant_id, identificador_intercambio) WHERE estado <> 'rechazado'"
    )
    op.execute(
        f'CREATE INDEX ix_intercambios_tenant_recibido ON "{SCHEMA}".intercambios '
        "(tenant_id, recibido_en DESC, id DESC)"
    )
    enable_tenant_rls(SCHEMA, "intercambios")
    # No DELETE: the received file and the decision on it are the register's trace.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."intercambios" TO "{role}"')


def downgrade() -> None:
    op.drop_table("intercambios", schema=SCHEMA)
