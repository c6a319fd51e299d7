"""registro: RFC 3161 time-stamps of asientos (helper sello).

Revision ID: registro_0008
Revises: registro_0007
Create Date: 2026-11-23

Ley 39/2015 (art. 16) makes the register date-time evidence: every asiento gets a
time-stamp token from the sellado's TSA over its canonical bytes. One row per
asiento in ``sellos_tiempo``:

- ``datos`` are the exact bytes stamped, kept verbatim (the asiento's canonical
  JSON as it was recorded), so a later growth of the asiento's schema never
  changes what the token proves; ``huella`` is their SHA-256, and a CHECK keeps
  the two together.
- the app role may INSERT rows and UPDATE only the columns of the request's
  progress (estado, attempt, token, ...): never ``datos``, ``huella`` or
  ``algoritmo``, so the stamped bytes cannot be rewritten by the service; no DELETE.
- CHECKs tie each estado to its columns: a ``sellado`` row has its token, time,
  serial, policy and delay; a ``fallido`` one its motivo and codigo.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "registro_0008"
down_revision = "registro_0007"
branch_labels = None
depends_on = None

SCHEMA = "registro"

# What a request's progress changes; the stamped bytes are not among them.
_UPDATABLE = (
    "estado",
    "intento",
    "solicitud_id",
    "solicitado_en",
    "token",
    "gen_time",
    "serial",
    "politica",
    "desfase_ms",
    "motivo",
    "codigo",
    "actualizado_en",
)


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "sellos_tiempo",
        sa.Column(
            "asiento_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.asientos.id", name="fk_sellos_tiempo_asiento"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("intento", sa.Integer, nullable=False),
        sa.Column("solicitud_id", UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("solicitado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("algoritmo", sa.String(10), nullable=False),
        sa.Column("datos", sa.LargeBinary, nullable=False),
        sa.Column("huella", sa.String(64), nullable=False),
        sa.Column("token", sa.LargeBinary),
        sa.Column("gen_time", sa.DateTime(timezone=True)),
        sa.Column("serial", sa.String(49)),
        sa.Column("politica", sa.String(200)),
        sa.Column("desfase_ms", sa.BigInteger),
        sa.Column("motivo", sa.Text),
        sa.Column("codigo", sa.String(100)),
        sa.Column("actualizado_en", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "estado IN ('pendiente', 'sellado', 'fallido')", name="ck_sellos_tiempo_estado"
        ),
        sa.CheckConstraint("algoritmo = 'sha256'", name="ck_sellos_tiempo_algoritmo"),
        sa.CheckConstraint("huella = encode(sha256(datos), 'hex')", name="ck_sellos_tiempo_huella"),
        sa.CheckConstraint(
            "(estado = 'sellado') = (token IS NOT NULL AND gen_time IS NOT NULL "
            "AND serial IS NOT NULL AND politica IS NOT NULL AND desfase_ms IS NOT NULL)",
            name="ck_sellos_tiempo_sellado",
        ),
        sa.CheckConstraint(
            "(estado = 'fallido') = (motivo IS NOT NULL AND codigo IS NOT NULL)",
            name="ck_sellos_tiempo_fallido",
        ),
        sa.CheckConstraint("intento >= 1", name="ck_sellos_tiempo_intento"),
        schema=SCHEMA,
    )
    # Asientos still waiting for their token, for an operator's view of the backlog.
    op.execute(
        f'CREATE INDEX ix_sellos_tiempo_pendientes ON "{SCHEMA}".sellos_tiempo '
        "(tenant_id, solicitado_en) WHERE estado <> 'sellado'"
    )
    enable_tenant_rls(SCHEMA, "sellos_tiempo")
    op.execute(f'GRANT SELECT, INSERT ON "{SCHEMA}"."sellos_tiempo" TO "{role}"')
    columns = ", ".join(_UPDATABLE)
    op.execute(f'GRANT UPDATE ({columns}) ON "{SCHEMA}"."sellos_tiempo" TO "{role}"')


def downgrade() -> None:
    op.drop_table("sellos_tiempo", schema=SCHEMA)
