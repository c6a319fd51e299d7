"""registro: exports of the libro de registro (CSV or PDF of a book over a period).

Revision ID: registro_0005
Revises: registro_0004
Create Date: 2026-12-22

An export is a job: the API inserts it ``pendiente`` and the service process runs
it in the background (``en_curso``), reading the book in batches and writing its
progress (``hechos`` of ``total``) in short transactions so a client can poll it;
it ends ``terminada`` with the file in ``resultado`` or ``fallida`` with ``error``.
The range is [desde, hasta) in the entity's local dates, at most one year; the file
is capped at 64 MiB. Exports are never deleted by the services (they are a trace of
who took a copy of the register and when).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "registro_0005"
down_revision = "registro_0004"
branch_labels = None
depends_on = None

SCHEMA = "registro"
_MAX_RESULTADO_BYTES = 64 * 1024 * 1024


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "exportaciones",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("tipo", sa.String(10), nullable=False),
        sa.Column("formato", sa.String(5), nullable=False),
        sa.Column("desde", sa.Date, nullable=False),
        sa.Column("hasta", sa.Date, nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("total", sa.Integer),
        sa.Column("hechos", sa.Integer, nullable=False, server_default="0"),
        sa.Column("creado_por", sa.String(255), nullable=False),
        sa.Column("creado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("iniciado_en", sa.DateTime(timezone=True)),
        sa.Column("actualizado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terminado_en", sa.DateTime(timezone=True)),
        sa.Column("resultado", sa.LargeBinary),
        sa.Column("tamano", sa.Integer),
        sa.Column("error", sa.Text),
        sa.CheckConstraint("tipo IN ('entrada', 'salida')", name="ck_exportaciones_tipo"),
        sa.CheckConstraint("formato IN ('csv', 'pdf')", name="ck_exportaciones_formato"),
        sa.CheckConstraint(
            "estado IN ('pendiente', 'en_curso', 'terminada', 'fallida')",
            name="ck_exportaciones_estado",
        ),
        sa.CheckConstraint(
            "hasta > desde AND hasta <= desde + interval '1 year'", name="ck_exportaciones_rango"
        ),
        sa.CheckConstraint(
            "hechos >= 0 AND (total IS NULL OR total >= 0)", name="ck_exportaciones_progreso"
        ),
        sa.CheckConstraint(
            "(estado = 'terminada') = (resultado IS NOT NULL)", name="ck_exportaciones_resultado"
        ),
        sa.CheckConstraint(
            f"resultado IS NULL OR octet_length(resultado) <= {_MAX_RESULTADO_BYTES}",
            name="ck_exportaciones_tamano",
        ),
        sa.CheckConstraint(
            "(estado = 'fallida') = (error IS NOT NULL)", name="ck_exportaciones_error"
        ),
        schema=SCHEMA,
    )
    op.execute(
        f'CREATE INDEX ix_exportaciones_tenant_creado ON "{SCHEMA}".exportaciones '
        "(tenant_id, creado_en DESC)"
    )
    enable_tenant_rls(SCHEMA, "exportaciones")
    # No DELETE: who exported the register, and when, stays on record.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."exportaciones" TO "{role}"')


def downgrade() -> None:
    op.drop_table("exportaciones", schema=SCHEMA)
