"""tramitador: kernel tables, catalogue (with the generic procedure) and expedientes.

Revision ID: tramitador_0001
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

revision = "tramitador_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "tramitador"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    catalogo = op.create_table(
        "procedimientos",
        sa.Column("codigo", sa.String(50), primary_key=True),
        sa.Column("denominacion", sa.String(255), nullable=False),
        sa.Column("norma", sa.Text, nullable=False),
        sa.Column("sia", sa.String(20)),
        sa.Column("plazo_resolucion_meses", sa.Integer, nullable=False),
        sa.Column("silencio", sa.String(20), nullable=False),
        schema=SCHEMA,
    )
    op.bulk_insert(
        catalogo,
        [
            {
                "codigo": "generico",
                "denominacion": "Procedimiento administrativo común (solicitud genérica)",
                "norma": "Ley 39/2015, de 1 de octubre, del Procedimiento Administrativo Común "
                "de las Administraciones Públicas",
                "sia": None,
                # Art. 21.3: three months when the rule sets no time limit; art. 24.1:
                # silence is estimatorio for procedures started on request, as a rule.
                "plazo_resolucion_meses": 3,
                "silencio": "estimatorio",
            }
        ],
    )
    op.create_table(
        "expedientes",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("anio", sa.Integer, nullable=False),
        sa.Column("secuencia", sa.Integer, nullable=False),
        sa.Column("numero", sa.String(20), nullable=False),
        sa.Column(
            "procedimiento",
            sa.String(50),
            sa.ForeignKey(f"{SCHEMA}.procedimientos.codigo"),
            nullable=False,
        ),
        sa.Column("estado", sa.String(20), nullable=False),
        sa.Column("asiento_id", UUID(as_uuid=False), nullable=False),
        sa.Column("asiento_numero", sa.String(20), nullable=False),
        sa.Column("fecha_inicio", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interesados", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("tenant_id", "anio", "secuencia", name="uq_expedientes_numero"),
        sa.UniqueConstraint("tenant_id", "asiento_id", name="uq_expedientes_asiento"),
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "expedientes")
    create_kernel_tables_v1(SCHEMA, role)
    grant_app_role(SCHEMA, role)
    op.execute(f'REVOKE INSERT, UPDATE, DELETE ON "{SCHEMA}"."procedimientos" FROM "{role}"')


def downgrade() -> None:
    op.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
