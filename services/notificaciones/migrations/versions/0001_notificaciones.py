"""notificaciones: kernel tables, notificaciones, intentos and the expiry lookup.

Revision ID: notificaciones_0001
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

revision = "notificaciones_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "notificaciones"
_ESTADOS = (
    "puesta_disposicion",
    "en_reparto",
    "pendiente_publicacion",
    "practicada",
    "rechazada",
    "expirada",
    "fallida",
)
_RESULTADOS = ("entregada", "ausente", "desconocido", "rehusada")


def _en(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "notificaciones",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("estado", sa.String(25), nullable=False),
        sa.Column("canal", sa.String(12), nullable=False),
        sa.Column("documento_id", UUID(as_uuid=False), nullable=False),
        sa.Column("documento_version", sa.Integer),
        sa.Column("documento_nombre", sa.String(255)),
        sa.Column("expediente_id", sa.String(100)),
        sa.Column("concepto", sa.String(500), nullable=False),
        sa.Column("emisor", sa.String(200), nullable=False),
        sa.Column("interesado", JSONB, nullable=False),
        sa.Column("interesado_identificador", sa.String(20), nullable=False),
        sa.Column("representante_identificador", sa.String(20)),
        sa.Column("origen", sa.String(12), nullable=False),
        sa.Column("solicitud_id", UUID(as_uuid=False)),
        sa.Column("creada_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("puesta_en", sa.DateTime(timezone=True)),
        sa.Column("vence_en", sa.DateTime(timezone=True)),
        sa.Column("efectos_en", sa.DateTime(timezone=True)),
        sa.Column("fecha_legal", sa.Date),
        sa.Column("publicacion", JSONB),
        sa.Column("motivo", sa.Text),
        sa.Column("actualizada_en", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_en("estado", _ESTADOS), name="ck_notificaciones_estado"),
        sa.CheckConstraint(_en("canal", ("electronico", "postal")), name="ck_notificaciones_canal"),
        sa.CheckConstraint(_en("origen", ("api", "tramitador")), name="ck_notificaciones_origen"),
        # An electronic notification at disposal always knows when it expires.
        sa.CheckConstraint(
            "estado <> 'puesta_disposicion' OR (canal = 'electronico' AND puesta_en IS NOT NULL "
            "AND vence_en IS NOT NULL)",
            name="ck_notificaciones_puesta_completa",
        ),
        # A notification with effects carries the instant and the legal date they start.
        sa.CheckConstraint(
            "estado NOT IN ('practicada', 'rechazada', 'expirada') OR "
            "(efectos_en IS NOT NULL AND fecha_legal IS NOT NULL)",
            name="ck_notificaciones_efectos",
        ),
        schema=SCHEMA,
    )
    # The scheduler's question: which notifications at disposal are due now.
    op.create_index(
        "ix_notificaciones_vence",
        "notificaciones",
        ["vence_en"],
        schema=SCHEMA,
        postgresql_where=sa.text("estado = 'puesta_disposicion'"),
    )
    op.create_index(
        "ix_notificaciones_interesado",
        "notificaciones",
        ["tenant_id", "interesado_identificador"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notificaciones_representante",
        "notificaciones",
        ["tenant_id", "representante_identificador"],
        schema=SCHEMA,
        postgresql_where=sa.text("representante_identificador IS NOT NULL"),
    )
    op.create_index(
        "ix_notificaciones_expediente",
        "notificaciones",
        ["tenant_id", "expediente_id"],
        schema=SCHEMA,
    )
    # A command of the tramitador creates its notifications once, however often delivered.
    op.create_index(
        "uq_notificaciones_solicitud",
        "notificaciones",
        ["tenant_id", "solicitud_id", "interesado_identificador"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("solicitud_id IS NOT NULL"),
    )
    op.create_table(
        "intentos",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column(
            "notificacion_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.notificaciones.id"),
            nullable=False,
        ),
        sa.Column("resultado", sa.String(12), nullable=False),
        sa.Column("en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receptor_nombre", sa.String(200)),
        sa.Column("receptor_nif", sa.String(20)),
        sa.Column("valido", sa.Boolean, nullable=False),
        sa.Column("motivo", sa.Text),
        sa.Column("registrado_por", sa.String(255), nullable=False),
        sa.Column("registrado_en", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_en("resultado", _RESULTADOS), name="ck_intentos_resultado"),
        # Art. 42.2: a delivery names who took it and their identity document.
        sa.CheckConstraint(
            "resultado <> 'entregada' OR "
            "(receptor_nombre IS NOT NULL AND receptor_nif IS NOT NULL)",
            name="ck_intentos_receptor",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_intentos_notificacion", "intentos", ["notificacion_id"], schema=SCHEMA)
    for table in ("notificaciones", "intentos"):
        enable_tenant_rls(SCHEMA, table)
    create_kernel_tables_v1(SCHEMA, role)
    # Evidence is never deleted.
    op.execute(f'REVOKE DELETE ON "{SCHEMA}"."notificaciones", "{SCHEMA}"."intentos" FROM "{role}"')
    op.execute(f'REVOKE UPDATE ON "{SCHEMA}"."intentos" FROM "{role}"')

    # The expiry scheduler serves every tenant; the table keeps its row-level security
    # and this function, owned by the migration owner, answers only which rows are due.
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".vencidas(ahora timestamptz, limite integer)
        RETURNS TABLE (tenant_id varchar, id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
            SELECT n.tenant_id, n.id
            FROM "{SCHEMA}".notificaciones AS n
            WHERE n.estado = 'puesta_disposicion' AND n.vence_en <= ahora
            ORDER BY n.vence_en
            LIMIT limite
        $$
        """
    )
    op.execute(f'REVOKE ALL ON FUNCTION "{SCHEMA}".vencidas(timestamptz, integer) FROM PUBLIC')
    op.execute(f'GRANT EXECUTE ON FUNCTION "{SCHEMA}".vencidas(timestamptz, integer) TO "{role}"')


def downgrade() -> None:
    op.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
