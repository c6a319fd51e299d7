"""registro: oficinas de registro, libros and the numbering mode (helper oficinas).

Revision ID: registro_0007
Revises: registro_0006
Create Date: 2026-11-23

``oficinas`` (DIR3 code and numbering prefijo, each unique per entity), ``libros``
(one per tipo and ámbito: central, or one oficina) and ``numeracion`` (the entity's
mode from a year on; no rows: central, as before). See services/registro/oficinas_domain.py.

Numbering per oficina gives each oficina its own sequence per tipo and year, so
(tenant_id, tipo, anio, secuencia) is no longer unique: its constraint goes. The
number itself stays unique per entity through ix_asientos_tenant_numero
(registro_0003): per-oficina numbers carry the oficina's prefijo, and a year is
numbered in one mode only.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "registro_0007"
down_revision = "registro_0006"
branch_labels = None
depends_on = None

SCHEMA = "registro"


def upgrade() -> None:
    """Creates the three tables with row-level security and drops the per-tipo uniqueness."""
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "oficinas",
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("codigo", sa.String(9), nullable=False),
        sa.Column("nombre", sa.String(80), nullable=False),
        sa.Column("prefijo", sa.SmallInteger, nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("creada_por", sa.String(255), nullable=False),
        sa.Column("creada_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cerrada_por", sa.String(255)),
        sa.Column("cerrada_en", sa.DateTime(timezone=True)),
        sa.Column("motivo_cierre", sa.Text),
        sa.PrimaryKeyConstraint("tenant_id", "codigo", name="pk_oficinas"),
        sa.UniqueConstraint("tenant_id", "prefijo", name="uq_oficinas_prefijo"),
        sa.CheckConstraint("prefijo BETWEEN 1 AND 999", name="ck_oficinas_prefijo"),
        sa.CheckConstraint("estado IN ('activa', 'cerrada')", name="ck_oficinas_estado"),
        sa.CheckConstraint(
            "(estado = 'cerrada') = (cerrada_en IS NOT NULL)", name="ck_oficinas_cierre"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "libros",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("tipo", sa.String(10), nullable=False),
        sa.Column("oficina", sa.String(9)),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("abierto_por", sa.String(255), nullable=False),
        sa.Column("abierto_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cerrado_por", sa.String(255)),
        sa.Column("cerrado_en", sa.DateTime(timezone=True)),
        sa.Column("motivo_cierre", sa.Text),
        sa.ForeignKeyConstraint(
            ["tenant_id", "oficina"],
            [f"{SCHEMA}.oficinas.tenant_id", f"{SCHEMA}.oficinas.codigo"],
            name="fk_libros_oficina",
        ),
        sa.CheckConstraint("tipo IN ('entrada', 'salida')", name="ck_libros_tipo"),
        sa.CheckConstraint("estado IN ('abierto', 'cerrado')", name="ck_libros_estado"),
        sa.CheckConstraint(
            "(estado = 'cerrado') = (cerrado_en IS NOT NULL AND motivo_cierre IS NOT NULL)",
            name="ck_libros_cierre",
        ),
        schema=SCHEMA,
    )
    # One libro per tipo and ámbito (NULL oficina: the central one).
    op.execute(
        f'CREATE UNIQUE INDEX ux_libros_central ON "{SCHEMA}".libros (tenant_id, tipo) '
        "WHERE oficina IS NULL"
    )
    op.execute(
        f'CREATE UNIQUE INDEX ux_libros_oficina ON "{SCHEMA}".libros (tenant_id, tipo, oficina) '
        "WHERE oficina IS NOT NULL"
    )
    op.create_table(
        "numeracion",
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("desde_anio", sa.Integer, nullable=False),
        sa.Column("modo", sa.String(10), nullable=False),
        sa.Column("configurado_por", sa.String(255), nullable=False),
        sa.Column("configurado_en", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "desde_anio", name="pk_numeracion"),
        sa.CheckConstraint("modo IN ('central', 'oficina')", name="ck_numeracion_modo"),
        schema=SCHEMA,
    )
    for table in ("oficinas", "libros", "numeracion"):
        enable_tenant_rls(SCHEMA, table)
    # Oficinas and libros are closed, never deleted: they are named by asientos and the
    # audit trail. A scheduled change of mode may be replaced, so numeracion allows DELETE.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."oficinas" TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."libros" TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{SCHEMA}"."numeracion" TO "{role}"')
    op.drop_constraint("uq_asientos_numero", "asientos", schema=SCHEMA, type_="unique")


def downgrade() -> None:
    """Drops the tables; the old uniqueness comes back only if no oficina numbered twice."""
    op.create_unique_constraint(
        "uq_asientos_numero", "asientos", ["tenant_id", "tipo", "anio", "secuencia"], schema=SCHEMA
    )
    op.drop_table("numeracion", schema=SCHEMA)
    op.drop_table("libros", schema=SCHEMA)
    op.drop_table("oficinas", schema=SCHEMA)
