"""pagos: kernel tables, configuration, ordenanza conceptos, liquidaciones and card attempts.

Revision ID: pagos_0001
Revises:
Create Date: 2026-12-07
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import (
    create_kernel_tables_v1,
    enable_tenant_rls,
    migration_attr,
)

revision = "pagos_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "pagos"
_ESTADOS = ("pendiente", "pagada", "vencida", "anulada", "devuelta")
_INTENTOS = ("iniciado", "autorizado", "denegado")


def _en(columna: str, valores: tuple[str, ...]) -> str:
    return f"{columna} IN (" + ", ".join(f"'{v}'" for v in valores) + ")"


def _ahora() -> sa.Column[Any]:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "configuracion",
        sa.Column("tenant_id", sa.String(5), primary_key=True),
        sa.Column("redsys_comercio", sa.String(9)),
        sa.Column("redsys_terminal", sa.String(3)),
        sa.Column("redsys_clave", sa.Text),
        sa.Column("redsys_url", sa.Text),
        sa.Column("emisora", sa.String(6)),
        _ahora(),
        sa.CheckConstraint("emisora ~ '^[0-9]{6}$'", name="ck_configuracion_emisora"),
        schema=SCHEMA,
    )
    op.create_table(
        "conceptos",
        sa.Column("tenant_id", sa.String(5), primary_key=True),
        sa.Column("codigo", sa.String(20), primary_key=True),
        sa.Column("nombre", sa.Text, nullable=False),
        sa.Column("tributo", sa.String(3), nullable=False),
        sa.Column("regla", JSONB, nullable=False),
        _ahora(),
        schema=SCHEMA,
    )
    op.create_table(
        "liquidaciones",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("ejercicio", sa.Integer, nullable=False),
        sa.Column("numero", sa.Integer, nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("origen", sa.String(20), nullable=False),
        sa.Column("concepto", sa.Text, nullable=False),
        sa.Column("concepto_codigo", sa.String(20)),
        sa.Column("tributo", sa.String(3), nullable=False),
        sa.Column("importe_centimos", sa.BigInteger, nullable=False),
        sa.Column("obligado", JSONB, nullable=False),
        sa.Column("obligado_identificador", sa.String(20), nullable=False),
        sa.Column("expediente_id", UUID(as_uuid=False)),
        sa.Column("vencimiento", sa.Date, nullable=False),
        sa.Column("emisora", sa.String(6), nullable=False),
        sa.Column("referencia", sa.String(12), nullable=False),
        sa.Column("identificacion", sa.String(10), nullable=False),
        sa.Column("calculo", JSONB),
        sa.Column("canal", sa.String(12)),
        sa.Column("justificante_pago", sa.String(64)),
        sa.Column("motivo_anulacion", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("pagada_at", sa.DateTime(timezone=True)),
        _ahora(),
        sa.CheckConstraint(_en("estado", _ESTADOS), name="ck_liquidaciones_estado"),
        sa.CheckConstraint("importe_centimos > 0", name="ck_liquidaciones_importe"),
        sa.CheckConstraint("referencia ~ '^[0-9]{12}$'", name="ck_liquidaciones_referencia"),
        sa.CheckConstraint(
            "estado NOT IN ('pagada', 'devuelta') OR (pagada_at IS NOT NULL AND canal IS NOT NULL)",
            name="ck_liquidaciones_pagada",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_liquidaciones_numero",
        "liquidaciones",
        ["tenant_id", "ejercicio", "numero"],
        unique=True,
        schema=SCHEMA,
    )
    # What the bank's cobros file names: emisora and referencia.
    op.create_index(
        "uq_liquidaciones_referencia",
        "liquidaciones",
        ["tenant_id", "emisora", "referencia"],
        unique=True,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_liquidaciones_obligado",
        "liquidaciones",
        ["tenant_id", "obligado_identificador"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_liquidaciones_created", "liquidaciones", ["tenant_id", "created_at"], schema=SCHEMA
    )
    op.create_table(
        "intentos",
        sa.Column("orden", sa.String(12), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("liquidacion_id", UUID(as_uuid=False), nullable=False),
        sa.Column("importe_centimos", sa.BigInteger, nullable=False),
        sa.Column("comercio", sa.String(9), nullable=False),
        sa.Column("terminal", sa.String(3), nullable=False),
        sa.Column("estado", sa.String(12), nullable=False),
        sa.Column("ds_response", sa.String(4)),
        sa.Column("autorizacion", sa.String(6)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("resuelto_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["liquidacion_id"], [f"{SCHEMA}.liquidaciones.id"], name="fk_intentos_liquidacion"
        ),
        sa.CheckConstraint(_en("estado", _INTENTOS), name="ck_intentos_estado"),
        sa.CheckConstraint("orden ~ '^[0-9]{4}[0-9A-Za-z]{0,8}$'", name="ck_intentos_orden"),
        schema=SCHEMA,
    )
    op.create_index("ix_intentos_liquidacion", "intentos", ["liquidacion_id"], schema=SCHEMA)
    # Order numbers are unique in the installation, so the public notification finds one.
    op.execute(f'CREATE SEQUENCE "{SCHEMA}".orden_seq START 1 MAXVALUE 999999999999')
    for table in ("configuracion", "conceptos", "liquidaciones", "intentos"):
        enable_tenant_rls(SCHEMA, table)
    create_kernel_tables_v1(SCHEMA, role)
    # A liquidación is never deleted: it is annulled, and its number stays taken.
    op.execute(f'REVOKE DELETE ON "{SCHEMA}"."liquidaciones", "{SCHEMA}"."intentos" FROM "{role}"')
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".tenant_de_orden(numero text)
        RETURNS varchar
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$ SELECT i.tenant_id FROM "{SCHEMA}".intentos AS i WHERE i.orden = numero $$
        """
    )
    op.execute(f'REVOKE ALL ON FUNCTION "{SCHEMA}".tenant_de_orden(text) FROM PUBLIC')
    op.execute(f'GRANT EXECUTE ON FUNCTION "{SCHEMA}".tenant_de_orden(text) TO "{role}"')


def downgrade() -> None:
    op.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
