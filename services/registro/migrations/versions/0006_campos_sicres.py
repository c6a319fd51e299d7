"""registro: every SICRES 3.0 field on asientos, the channel, and corrections.

Revision ID: registro_0006
Revises: registro_0005
Create Date: 2026-11-23

Asientos gain what SICRES 3.0 carries besides what they had: the oficina where the
asiento was presented, origin and destination codes, asunto codes, transport, the
registering user's contact, physical documentation, observaciones, expone/solicita,
the anexos (as kept in the repositorio, JSON) and ``corrige``, the asiento a new one
corrects (asientos are never edited). ``canal`` says whether it came in at a desk or
through the sede. Interesados (JSON) gain address, DEH, channel and representante
without a schema change; their names search now includes the razón social, so the
trigram index is rebuilt over the new expression.

Every new column is nullable or has a constant default: PostgreSQL adds them without
rewriting the table, which matters at a million asientos.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "registro_0006"
down_revision = "registro_0005"
branch_labels = None
depends_on = None

SCHEMA = "registro"

_NOMBRES_SIN_RAZON = "' ', e->>'nombre', e->>'apellido1', e->>'apellido2'"
_NOMBRES_CON_RAZON = "' ', e->>'razon_social', e->>'nombre', e->>'apellido1', e->>'apellido2'"


def _nombres_interesados(campos: str) -> None:
    """(Re)defines the names text of interesados and its trigram index."""
    op.execute(f'DROP INDEX IF EXISTS "{SCHEMA}".ix_asientos_nombres_trgm')
    op.execute(
        f'CREATE OR REPLACE FUNCTION "{SCHEMA}".nombres_interesados(interesados jsonb) '
        "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ "
        f'SELECT "{SCHEMA}".texto_busqueda(coalesce(string_agg(concat_ws('
        f"{campos}), ' | '), '')) "
        "FROM jsonb_array_elements(interesados) AS e $$"
    )
    op.execute(
        f'CREATE INDEX ix_asientos_nombres_trgm ON "{SCHEMA}".asientos '
        f'USING gin ("{SCHEMA}".nombres_interesados(interesados) public.gin_trgm_ops)'
    )


def _add(column: "sa.Column[object]") -> None:
    op.add_column("asientos", column, schema=SCHEMA)


def upgrade() -> None:
    _add(sa.Column("canal", sa.String(12), nullable=False, server_default="presencial"))
    _add(sa.Column("oficina", sa.String(21)))
    _add(sa.Column("origen", JSONB))
    _add(sa.Column("entidad_registral_destino", sa.String(21)))
    _add(sa.Column("codigo_asunto", sa.String(16)))
    _add(sa.Column("referencia_externa", sa.String(16)))
    _add(sa.Column("numero_expediente", sa.String(80)))
    _add(sa.Column("transporte", JSONB))
    _add(sa.Column("contacto_usuario", sa.String(160)))
    _add(sa.Column("documentacion_fisica", sa.String(1), nullable=False, server_default="3"))
    _add(sa.Column("observaciones", sa.String(50)))
    _add(sa.Column("expone", sa.Text))
    _add(sa.Column("solicita", sa.Text))
    _add(
        sa.Column(
            "corrige",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.asientos.id", name="fk_asientos_corrige"),
        )
    )
    _add(sa.Column("anexos", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")))
    op.create_check_constraint(
        "ck_asientos_canal", "asientos", "canal IN ('presencial', 'electronico')", schema=SCHEMA
    )
    op.create_check_constraint(
        "ck_asientos_documentacion_fisica",
        "asientos",
        "documentacion_fisica IN ('1', '2', '3')",
        schema=SCHEMA,
    )
    op.execute(
        f'CREATE INDEX ix_asientos_tenant_oficina ON "{SCHEMA}".asientos '
        "(tenant_id, oficina, fecha_registro DESC, id DESC) WHERE oficina IS NOT NULL"
    )
    op.execute(
        f'CREATE INDEX ix_asientos_corrige ON "{SCHEMA}".asientos (corrige) '
        "WHERE corrige IS NOT NULL"
    )
    _nombres_interesados(_NOMBRES_CON_RAZON)


def downgrade() -> None:
    _nombres_interesados(_NOMBRES_SIN_RAZON)
    op.execute(f'DROP INDEX "{SCHEMA}".ix_asientos_corrige')
    op.execute(f'DROP INDEX "{SCHEMA}".ix_asientos_tenant_oficina')
    for name in ("ck_asientos_documentacion_fisica", "ck_asientos_canal"):
        op.drop_constraint(name, "asientos", schema=SCHEMA)
    for column in (
        "anexos",
        "corrige",
        "solicita",
        "expone",
        "observaciones",
        "documentacion_fisica",
        "contacto_usuario",
        "transporte",
        "numero_expediente",
        "referencia_externa",
        "codigo_asunto",
        "entidad_registral_destino",
        "origen",
        "oficina",
        "canal",
    ):
        op.drop_column("asientos", column, schema=SCHEMA)
