"""notificaciones: avisos (art. 41.6) by email and SMS, and the sender's lookup.

Revision ID: notificaciones_0002
Revises: notificaciones_0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "notificaciones_0002"
down_revision = "notificaciones_0001"
branch_labels = None
depends_on = None

SCHEMA = "notificaciones"
_ESTADOS = ("pendiente", "enviando", "enviado", "fallido", "incierto")


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "avisos",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column(
            "notificacion_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.notificaciones.id"),
            nullable=False,
        ),
        sa.Column("canal", sa.String(5), nullable=False),
        sa.Column("destino", sa.String(254), nullable=False),
        sa.Column("idioma", sa.String(2), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("intentos", sa.Integer, nullable=False),
        sa.Column("proximo_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reclamado_en", sa.DateTime(timezone=True)),
        sa.Column("enviado_en", sa.DateTime(timezone=True)),
        sa.Column("referencia", sa.String(255)),
        sa.Column("error", sa.Text),
        sa.Column("creado_en", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("canal IN ('email', 'sms')", name="ck_avisos_canal"),
        sa.CheckConstraint(
            "estado IN (" + ", ".join(f"'{e}'" for e in _ESTADOS) + ")", name="ck_avisos_estado"
        ),
        sa.CheckConstraint("idioma IN ('es', 'va')", name="ck_avisos_idioma"),
        # Never two avisos of one notification on one channel.
        sa.UniqueConstraint("notificacion_id", "canal", name="uq_avisos_notificacion_canal"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_avisos_pendientes",
        "avisos",
        ["proximo_en"],
        schema=SCHEMA,
        postgresql_where=sa.text("estado IN ('pendiente', 'enviando')"),
    )
    op.create_index(
        "ix_avisos_tenant_reclamado", "avisos", ["tenant_id", "reclamado_en"], schema=SCHEMA
    )
    enable_tenant_rls(SCHEMA, "avisos")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."avisos" TO "{role}"')
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".avisos_por_atender(
            ahora timestamptz, limite integer, plazo interval
        )
        RETURNS TABLE (tenant_id varchar, id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
            SELECT a.tenant_id, a.id
            FROM "{SCHEMA}".avisos AS a
            WHERE (a.estado = 'pendiente' AND a.proximo_en <= ahora)
               OR (a.estado = 'enviando' AND a.reclamado_en <= ahora - plazo)
            ORDER BY a.proximo_en
            LIMIT limite
        $$
        """
    )
    fn = f'"{SCHEMA}".avisos_por_atender(timestamptz, integer, interval)'
    op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION {fn} TO "{role}"')


def downgrade() -> None:
    op.execute(f'DROP FUNCTION "{SCHEMA}".avisos_por_atender(timestamptz, integer, interval)')
    op.drop_table("avisos", schema=SCHEMA)
