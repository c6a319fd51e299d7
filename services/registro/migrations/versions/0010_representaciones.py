"""registro: representaciones (who may act for whom) and citizens' own asientos.

Revision ID: registro_0010
Revises: registro_0009
Create Date: 2026-11-23

A citizen presents asientos through the sede as themselves or for a poderdante whose
representation the office has recorded here, in force on the day. Representations are
never deleted: revoking one fills ``revocada_*``. The index on (tenant, registrado_por,
date) answers a citizen's "my asientos" without scanning the entity's register.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "registro_0010"
down_revision = "registro_0009"
branch_labels = None
depends_on = None

SCHEMA = "registro"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "representaciones",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("poderdante_tipo", sa.String(10), nullable=False),
        sa.Column("poderdante", sa.String(17), nullable=False),
        sa.Column("poderdante_nombre", sa.String(160), nullable=False),
        sa.Column("representante_tipo", sa.String(10), nullable=False),
        sa.Column("representante", sa.String(17), nullable=False),
        sa.Column("representante_nombre", sa.String(160), nullable=False),
        sa.Column("vigente_desde", sa.Date, nullable=False),
        sa.Column("vigente_hasta", sa.Date),
        sa.Column("documento", sa.String(160)),
        sa.Column("registrada_por", sa.String(255), nullable=False),
        sa.Column("registrada_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revocada_por", sa.String(255)),
        sa.Column("revocada_en", sa.DateTime(timezone=True)),
        sa.Column("motivo_revocacion", sa.Text),
        sa.CheckConstraint(
            "vigente_hasta IS NULL OR vigente_hasta >= vigente_desde",
            name="ck_representaciones_vigencia",
        ),
        sa.CheckConstraint("poderdante <> representante", name="ck_representaciones_partes"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_representaciones_representante",
        "representaciones",
        ["tenant_id", "representante", "poderdante"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_representaciones_poderdante",
        "representaciones",
        ["tenant_id", "poderdante"],
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "representaciones")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."representaciones" TO "{role}"')
    op.execute(
        f'CREATE INDEX ix_asientos_registrado_por ON "{SCHEMA}".asientos '
        "(tenant_id, registrado_por, fecha_registro DESC, id DESC)"
    )


def downgrade() -> None:
    op.execute(f'DROP INDEX "{SCHEMA}".ix_asientos_registrado_por')
    op.drop_table("representaciones", schema=SCHEMA)
