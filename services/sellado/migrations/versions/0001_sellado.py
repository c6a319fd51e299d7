"""sellado: kernel tables and the sequence of time-stamp serial numbers.

Revision ID: sellado_0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op

from services.common.migrations_support import (
    create_kernel_tables_v1,
    grant_app_role,
    migration_attr,
)

revision = "sellado_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "sellado"
# Each nextval reserves this many serials for one TSA process; PostgresSerialSource
# checks its block size against it, so changing it needs a new revision and a
# matching release (ALTER SEQUENCE ... INCREMENT BY), never an edit of this one.
TSA_SERIAL_BLOCK = 1000


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.execute(
        f'CREATE SEQUENCE "{SCHEMA}"."tsa_serial" AS bigint '
        f"INCREMENT BY {TSA_SERIAL_BLOCK} MINVALUE 1 START WITH 1 NO CYCLE"
    )
    create_kernel_tables_v1(SCHEMA, role)
    grant_app_role(SCHEMA, role)
    # Stated here, not left to grant_app_role, so the TSA keeps its serials whatever
    # that helper grants later: nextval needs USAGE or UPDATE, monitoring reads
    # last_value with SELECT.
    op.execute(f'GRANT USAGE, SELECT, UPDATE ON SEQUENCE "{SCHEMA}"."tsa_serial" TO "{role}"')


def downgrade() -> None:
    op.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
