"""pagos: the vencimiento scheduler's one way across tenants.

``pagos.entidades_con_vencidas(tope date)`` answers which councils have pending
liquidaciones with a vencimiento before ``tope``, and nothing else: the scheduler
then expires each council's under its own row-level security
(services/pagos/vencimientos.py). Owned by the migration owner, executable only by
the app role. A partial index keeps the question cheap however many liquidaciones
were ever paid.

Revision ID: pagos_0006_vencimientos
Revises: pagos_0005_clave_cifrada
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations_support import migration_attr

revision = "pagos_0006_vencimientos"
down_revision = "pagos_0005_clave_cifrada"
branch_labels = None
depends_on = None

SCHEMA = "pagos"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_index(
        "ix_liquidaciones_pendientes_vencimiento",
        "liquidaciones",
        ["vencimiento"],
        schema=SCHEMA,
        postgresql_where=sa.text("estado = 'pendiente'"),
    )
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".entidades_con_vencidas(tope date)
        RETURNS TABLE (tenant_id varchar)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
            SELECT DISTINCT l.tenant_id
            FROM "{SCHEMA}".liquidaciones AS l
            WHERE l.estado = 'pendiente' AND l.vencimiento < tope
            ORDER BY l.tenant_id
        $$
        """
    )
    op.execute(f'REVOKE ALL ON FUNCTION "{SCHEMA}".entidades_con_vencidas(date) FROM PUBLIC')
    op.execute(f'GRANT EXECUTE ON FUNCTION "{SCHEMA}".entidades_con_vencidas(date) TO "{role}"')


def downgrade() -> None:
    op.execute(f'DROP FUNCTION "{SCHEMA}".entidades_con_vencidas(date)')
    op.drop_index("ix_liquidaciones_pendientes_vencimiento", "liquidaciones", schema=SCHEMA)
