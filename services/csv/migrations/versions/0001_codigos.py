"""csv: kernel tables, codigos and the public lookup of an active code.

Revision ID: csv_0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import (
    create_kernel_tables_v1,
    enable_tenant_rls,
    migration_attr,
)

revision = "csv_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "csv"
_ESTADOS = ("reservado", "activo", "anulado")


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "codigos",
        sa.Column("csv", sa.String(29), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("documento_id", UUID(as_uuid=False), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("solicitud_id", UUID(as_uuid=False), nullable=False),
        sa.Column("solicitante", sa.String(100), nullable=False),
        sa.Column("metadatos", JSONB),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("activado_at", sa.DateTime(timezone=True)),
        sa.Column("anulado_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "estado IN (" + ", ".join(f"'{e}'" for e in _ESTADOS) + ")",
            name="ck_codigos_estado",
        ),
        sa.CheckConstraint(
            "csv ~ '^[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){4}$'", name="ck_codigos_csv"
        ),
        # What the public page shows exists as soon as a code is active.
        sa.CheckConstraint(
            "estado <> 'activo' OR (metadatos IS NOT NULL AND version IS NOT NULL "
            "AND activado_at IS NOT NULL)",
            name="ck_codigos_activo_completo",
        ),
        sa.CheckConstraint(
            "estado <> 'anulado' OR anulado_at IS NOT NULL", name="ck_codigos_anulado_fecha"
        ),
        schema=SCHEMA,
    )
    # A requester's solicitud gets one code, however often its command is delivered.
    op.create_index(
        "uq_codigos_solicitud",
        "codigos",
        ["tenant_id", "solicitante", "solicitud_id"],
        unique=True,
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "codigos")
    create_kernel_tables_v1(SCHEMA, role)
    # A code is never deleted: once printed on a document it must keep its meaning.
    op.execute(f'REVOKE DELETE ON "{SCHEMA}"."codigos" FROM "{role}"')

    # Public verification knows only the code, not its tenant. The table keeps its
    # row-level security; this function, owned by the migration owner, is the one
    # way across tenants and answers only an active code's public fields.
    # search_path is pinned so nobody can slip objects in front of it.
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".verificar(code text)
        RETURNS TABLE (csv varchar, metadatos jsonb, activado_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
            SELECT c.csv, c.metadatos, c.activado_at
            FROM "{SCHEMA}".codigos AS c
            WHERE c.csv = code AND c.estado = 'activo'
        $$
        """
    )
    op.execute(f'REVOKE ALL ON FUNCTION "{SCHEMA}".verificar(text) FROM PUBLIC')
    op.execute(f'GRANT EXECUTE ON FUNCTION "{SCHEMA}".verificar(text) TO "{role}"')


def downgrade() -> None:
    op.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
