"""registro: annulment of asientos and the indexes of the search.

Revision ID: registro_0003
Revises: registro_0002
Create Date: 2026-12-08

Asientos stay insert-only (Ley 39/2015): an annulment is a row of its own in
``anulaciones``, also insert-only. The search indexes are designed for about a
million asientos per entity:

- ``(tenant_id, fecha_registro DESC, id DESC)`` serves the listing order, the
  date range and the keyset cursor; it replaces 0001's ``(tenant_id, fecha_registro)``.
- ``(tenant_id, numero)`` finds an asiento by its number (unique: the number is
  derived from the unique tipo/anio/secuencia).
- ``(tenant_id, unidad_destino, fecha_registro DESC, id DESC)`` lists one unit's
  asientos in order without visiting the others'.
- GIN ``jsonb_path_ops`` on ``interesados`` answers ``interesados @> [{"identificador": X}]``
  (identifiers are stored normalised, so containment is an exact match).
- trigram GIN on the normalised (lower case, unaccented) interesados' names and
  on the normalised resumen answer the substring searches.

Row-level security lets the planner use an index for a condition only if its
operator is LEAKPROOF (or it would run before the tenant policy); ``=`` and
``<`` are, but ``@>`` and ``LIKE`` are not, so under RLS the GIN indexes would never
be used. Those three searches therefore go through ``asientos_que_contienen``, a
SECURITY DEFINER function that runs as the owner (who bypasses RLS) and applies
the same tenant condition as the policy itself, explicitly; only the service role
may call it.

The normalisation functions are IMMUTABLE wrappers (``unaccent`` itself is only
STABLE, because its dictionary could change), so they can be indexed; they name
the dictionary explicitly, so a search_path cannot change what they do. The
extensions ``pg_trgm`` and ``unaccent`` are created here: the migration runs as
the database owner (a superuser in development and CI; in production the DBA
creates them beforehand and ``IF NOT EXISTS`` makes this a no-op).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.db import TENANT_SETTING
from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "registro_0003"
down_revision = "registro_0002"
branch_labels = None
depends_on = None

SCHEMA = "registro"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "anulaciones",
        sa.Column(
            "asiento_id",
            UUID(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.asientos.id", name="fk_anulaciones_asiento"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("motivo", sa.Text, nullable=False),
        sa.Column("anulado_por", sa.String(255), nullable=False),
        sa.Column("anulado_en", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("char_length(motivo) BETWEEN 1 AND 500", name="ck_anulaciones_motivo"),
        schema=SCHEMA,
    )
    enable_tenant_rls(SCHEMA, "anulaciones")
    # Insert-only, like the asientos themselves: an annulment is never undone or edited.
    op.execute(f'GRANT SELECT, INSERT ON "{SCHEMA}"."anulaciones" TO "{role}"')

    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public")
    op.execute(
        f'CREATE FUNCTION "{SCHEMA}".texto_busqueda(texto text) RETURNS text '
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS "
        "$$ SELECT public.unaccent('public.unaccent'::regdictionary, lower(texto)) $$"
    )
    op.execute(
        f'CREATE FUNCTION "{SCHEMA}".nombres_interesados(interesados jsonb) RETURNS text '
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ "
        f'SELECT "{SCHEMA}".texto_busqueda(coalesce(string_agg(concat_ws('
        "' ', e->>'nombre', e->>'apellido1', e->>'apellido2'), ' | '), '')) "
        "FROM jsonb_array_elements(interesados) AS e $$"
    )

    op.execute(
        f'CREATE FUNCTION "{SCHEMA}".asientos_que_contienen(campo text, valor text) '
        "RETURNS SETOF uuid LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 50 "
        "SET search_path = pg_catalog, public AS $$\n"
        "DECLARE\n"
        f"  tenant text := current_setting('{TENANT_SETTING}', true);\n"
        "BEGIN\n"
        "  IF tenant IS NULL OR tenant = '' THEN RETURN; END IF;\n"
        # EXECUTE ... USING plans with the actual values, so the index is chosen
        # for the term at hand.
        "  IF campo = 'identificador' THEN\n"
        f"    RETURN QUERY EXECUTE 'SELECT id FROM {SCHEMA}.asientos WHERE tenant_id = $1 "
        "AND interesados @> $2' USING tenant, "
        "jsonb_build_array(jsonb_build_object('identificador', valor));\n"
        "  ELSIF campo = 'nombre' THEN\n"
        f"    RETURN QUERY EXECUTE 'SELECT id FROM {SCHEMA}.asientos WHERE tenant_id = $1 "
        f"AND {SCHEMA}.nombres_interesados(interesados) LIKE {SCHEMA}.texto_busqueda($2)' "
        "USING tenant, valor;\n"
        "  ELSIF campo = 'resumen' THEN\n"
        f"    RETURN QUERY EXECUTE 'SELECT id FROM {SCHEMA}.asientos WHERE tenant_id = $1 "
        f"AND {SCHEMA}.texto_busqueda(resumen) LIKE {SCHEMA}.texto_busqueda($2)' "
        "USING tenant, valor;\n"
        "  ELSE\n"
        "    RAISE EXCEPTION 'campo de búsqueda desconocido: %', campo;\n"
        "  END IF;\n"
        "END $$"
    )
    op.execute(f'REVOKE ALL ON FUNCTION "{SCHEMA}".asientos_que_contienen(text, text) FROM PUBLIC')
    op.execute(
        f'GRANT EXECUTE ON FUNCTION "{SCHEMA}".asientos_que_contienen(text, text) TO "{role}"'
    )

    op.drop_index("ix_asientos_tenant_fecha", table_name="asientos", schema=SCHEMA)
    op.execute(
        f'CREATE INDEX ix_asientos_tenant_fecha_id ON "{SCHEMA}".asientos '
        "(tenant_id, fecha_registro DESC, id DESC)"
    )
    op.execute(
        f'CREATE UNIQUE INDEX ix_asientos_tenant_numero ON "{SCHEMA}".asientos (tenant_id, numero)'
    )
    op.execute(
        f'CREATE INDEX ix_asientos_tenant_unidad ON "{SCHEMA}".asientos '
        "(tenant_id, unidad_destino, fecha_registro DESC, id DESC)"
    )
    op.execute(
        f'CREATE INDEX ix_asientos_interesados ON "{SCHEMA}".asientos '
        "USING gin (interesados jsonb_path_ops)"
    )
    op.execute(
        f'CREATE INDEX ix_asientos_nombres_trgm ON "{SCHEMA}".asientos '
        f'USING gin ("{SCHEMA}".nombres_interesados(interesados) public.gin_trgm_ops)'
    )
    op.execute(
        f'CREATE INDEX ix_asientos_resumen_trgm ON "{SCHEMA}".asientos '
        f'USING gin ("{SCHEMA}".texto_busqueda(resumen) public.gin_trgm_ops)'
    )


def downgrade() -> None:
    for index in (
        "ix_asientos_resumen_trgm",
        "ix_asientos_nombres_trgm",
        "ix_asientos_interesados",
        "ix_asientos_tenant_unidad",
        "ix_asientos_tenant_numero",
        "ix_asientos_tenant_fecha_id",
    ):
        op.drop_index(index, table_name="asientos", schema=SCHEMA)
    op.create_index(
        "ix_asientos_tenant_fecha", "asientos", ["tenant_id", "fecha_registro"], schema=SCHEMA
    )
    op.execute(f'DROP FUNCTION "{SCHEMA}".asientos_que_contienen(text, text)')
    op.execute(f'DROP FUNCTION "{SCHEMA}".nombres_interesados(jsonb)')
    op.execute(f'DROP FUNCTION "{SCHEMA}".texto_busqueda(text)')
    # The extensions stay: other schemas may use them, and they hold no data.
    op.drop_table("anulaciones", schema=SCHEMA)
