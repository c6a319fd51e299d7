"""tramitador: versioned catalogue per council and the engine's tables.

The shared ``procedimientos`` table gives way to ``procedimiento_versiones`` (per
council, row-level security; a published version cannot change, enforced by a
trigger). Expedientes gain phase, version, iniciación and the engine's state; they may
start without an asiento (de oficio). New tables: trámites, plazos, historial
(append-only) and documentos.

Revision ID: tramitador_0004
Revises: tramitador_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import (
    enable_tenant_rls,
    grant_app_role,
    migration_attr,
    protect_audit_log_v1,
)

revision = "tramitador_0004"
down_revision = "tramitador_0003"
branch_labels = None
depends_on = None

SCHEMA = "tramitador"


def _uuid(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UUID(as_uuid=False), nullable=nullable)


def _created() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.drop_constraint("expedientes_procedimiento_fkey", "expedientes", schema=SCHEMA)
    op.drop_table("procedimientos", schema=SCHEMA)
    op.create_table(
        "procedimiento_versiones",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("codigo", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("estado", sa.String(12), nullable=False),
        sa.Column("nombre", sa.String(255), nullable=False),
        sa.Column("definicion", JSONB, nullable=False),
        sa.Column("creado_por", sa.String(200), nullable=False),
        _created(),
        sa.Column("publicado_at", sa.DateTime(timezone=True)),
        sa.Column("retirado_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("tenant_id", "codigo", "version", name="uq_procedimiento_version"),
        schema=SCHEMA,
    )
    # At most one published version per procedure and council.
    op.create_index(
        "uq_procedimiento_publicado",
        "procedimiento_versiones",
        ["tenant_id", "codigo"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("estado = 'publicado'"),
    )
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".version_inmutable() RETURNS trigger AS $$
        BEGIN
          IF OLD.estado <> 'borrador' AND (NEW.definicion IS DISTINCT FROM OLD.definicion
              OR NEW.codigo IS DISTINCT FROM OLD.codigo
              OR NEW.version IS DISTINCT FROM OLD.version) THEN
            RAISE EXCEPTION 'la versión % de % está %: es inmutable',
              OLD.version, OLD.codigo, OLD.estado;
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER version_inmutable BEFORE UPDATE ON "{SCHEMA}".procedimiento_versiones
          FOR EACH ROW EXECUTE FUNCTION "{SCHEMA}".version_inmutable();
        """
    )

    ex = "expedientes"
    op.alter_column(ex, "procedimiento", type_=sa.String(60), schema=SCHEMA)
    op.alter_column(ex, "asiento_id", nullable=True, schema=SCHEMA)
    op.alter_column(ex, "asiento_numero", nullable=True, schema=SCHEMA)
    for column in (
        sa.Column("procedimiento_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("fase", sa.String(60), nullable=False, server_default="inicio"),
        sa.Column("iniciacion", sa.String(10), nullable=False, server_default="solicitud"),
        sa.Column("unidad", sa.String(100)),
        sa.Column("asunto", sa.Text),
        sa.Column("interesado_id", sa.String(20)),
        sa.Column("interesado_nombre", sa.String(300)),
        sa.Column("documentos_aportados", JSONB, nullable=False, server_default="[]"),
        sa.Column("tasas_pagadas", JSONB, nullable=False, server_default="[]"),
        sa.Column("propuesta", sa.String(30)),
        sa.Column("resolucion", sa.String(30)),
        sa.Column("silencio", sa.String(20)),
        sa.Column("espera_evento", sa.String(100)),
        _uuid("espera_solicitud", nullable=True),
        sa.Column("plazo_ampliado", sa.Boolean, nullable=False, server_default="false"),
        sa.Column(
            "actualizado_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    ):
        op.add_column(ex, column, schema=SCHEMA)
    for name in ("procedimiento_version", "fase", "iniciacion"):
        op.alter_column(ex, name, server_default=None, schema=SCHEMA)
    op.create_index("ix_expedientes_interesado", ex, ["tenant_id", "interesado_id"], schema=SCHEMA)
    op.create_index(
        "ix_expedientes_interesados",
        ex,
        ["interesados"],
        schema=SCHEMA,
        postgresql_using="gin",
        postgresql_ops={"interesados": "jsonb_path_ops"},
    )
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_expedientes_nombre_trgm",
        ex,
        ["interesado_nombre"],
        schema=SCHEMA,
        postgresql_using="gin",
        postgresql_ops={"interesado_nombre": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_expedientes_fecha",
        ex,
        ["tenant_id", sa.text("fecha_inicio DESC"), sa.text("id DESC")],
        schema=SCHEMA,
    )

    op.create_table(
        "tramites",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        _uuid("expediente_id"),
        sa.Column("fase", sa.String(60), nullable=False),
        sa.Column("codigo", sa.String(60), nullable=False),
        sa.Column("nombre", sa.String(300), nullable=False),
        sa.Column("informe", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("unidad", sa.String(100)),
        sa.Column("rol", sa.String(60)),
        sa.Column("persona", sa.String(200)),
        sa.Column("estado", sa.String(12), nullable=False),
        sa.Column("vencimiento", sa.Date),
        sa.Column("sentido", sa.String(30)),
        sa.Column("procedimiento", sa.String(60), nullable=False),
        _created(),
        sa.Column("completado_at", sa.DateTime(timezone=True)),
        sa.Column("completado_por", sa.String(200)),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_tramites_bandeja",
        "tramites",
        ["tenant_id", "estado", sa.text("COALESCE(vencimiento, '9999-12-31'::date)"), "id"],
        schema=SCHEMA,
    )
    op.create_index("ix_tramites_expediente", "tramites", ["expediente_id"], schema=SCHEMA)

    op.create_table(
        "plazos",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        _uuid("expediente_id"),
        sa.Column("tipo", sa.String(20), nullable=False),
        sa.Column("inicio", sa.Date, nullable=False),
        sa.Column("vencimiento", sa.Date, nullable=False),
        sa.Column("estado", sa.String(12), nullable=False),
        sa.Column("suspendido_desde", sa.Date),
        sa.Column("dias_suspendidos", sa.Integer, nullable=False, server_default="0"),
        sa.Column("accion_al_vencer", sa.String(60)),
        sa.Column("procesado_at", sa.DateTime(timezone=True)),
        _created(),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_plazos_vencimiento", "plazos", ["tenant_id", "estado", "vencimiento"], schema=SCHEMA
    )
    op.create_index("ix_plazos_expediente", "plazos", ["expediente_id"], schema=SCHEMA)

    op.create_table(
        "historial",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        _uuid("expediente_id"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("accion", sa.String(60), nullable=False),
        sa.Column("fase_desde", sa.String(60)),
        sa.Column("fase_hacia", sa.String(60)),
        sa.Column("datos", JSONB, nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.create_index("ix_historial_expediente", "historial", ["expediente_id", "id"], schema=SCHEMA)

    op.create_table(
        "documentos",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        _uuid("expediente_id"),
        sa.Column("plantilla", sa.String(60)),
        sa.Column("titulo", sa.String(300), nullable=False),
        sa.Column("origen", sa.String(10), nullable=False),
        sa.Column("estado", sa.String(12), nullable=False),
        # Chosen by the repositorio when it issues; known at once for an attachment.
        _uuid("documento_id", nullable=True),
        _uuid("solicitud_id", nullable=True),
        sa.Column("csv", sa.String(40)),
        sa.Column("url_verificacion", sa.Text),
        sa.Column("motivo", sa.Text),
        _created(),
        schema=SCHEMA,
    )
    op.create_index("ix_documentos_expediente", "documentos", ["expediente_id"], schema=SCHEMA)
    op.create_index("ix_documentos_solicitud", "documentos", ["solicitud_id"], schema=SCHEMA)

    op.create_table(
        "miembros_unidad",
        sa.Column("tenant_id", sa.String(5), primary_key=True),
        sa.Column("unidad", sa.String(100), primary_key=True),
        sa.Column("usuario", sa.String(200), primary_key=True),
        schema=SCHEMA,
    )
    # Searches by interesado go through these: under row-level security PostgreSQL may
    # not use a GIN or trigram index for operators that are not leakproof (@>, ILIKE),
    # so they run as the owner, still confined to the transaction's tenant.
    for nombre, argumento, condicion in (
        ("ids_por_interesado", "termino jsonb", "interesados @> termino"),
        ("ids_por_nombre", "patron text", "interesado_nombre ILIKE patron"),
    ):
        op.execute(
            f"""
            CREATE FUNCTION "{SCHEMA}".{nombre}({argumento}) RETURNS SETOF uuid
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
              SELECT id FROM "{SCHEMA}".expedientes
              WHERE tenant_id = current_setting('app.tenant_id', true) AND {condicion}
            $$
            """
        )
        op.execute(
            f'REVOKE ALL ON FUNCTION "{SCHEMA}".{nombre}({argumento.split()[1]}) FROM PUBLIC'
        )
        op.execute(
            f'GRANT EXECUTE ON FUNCTION "{SCHEMA}".{nombre}({argumento.split()[1]}) TO "{role}"'
        )
    tablas = ("procedimiento_versiones", "tramites", "plazos", "historial", "documentos")
    for table in (*tablas, "miembros_unidad"):
        enable_tenant_rls(SCHEMA, table)
    grant_app_role(SCHEMA, role)
    protect_audit_log_v1(SCHEMA, role)
    # The history of an expediente is evidence: the services only add to it.
    op.execute(f'REVOKE UPDATE, DELETE ON "{SCHEMA}"."historial" FROM "{role}"')


def downgrade() -> None:
    """Back to the shared catalogue; expedientes keep only the columns 0001 knew (de oficio
    ones, which have no asiento, are dropped)."""
    for table in (
        "miembros_unidad",
        "documentos",
        "historial",
        "plazos",
        "tramites",
        "procedimiento_versiones",
    ):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f'DROP FUNCTION "{SCHEMA}".version_inmutable()')
    op.execute(f'DROP FUNCTION "{SCHEMA}".ids_por_interesado(jsonb)')
    op.execute(f'DROP FUNCTION "{SCHEMA}".ids_por_nombre(text)')
    op.drop_index("ix_expedientes_interesado", "expedientes", schema=SCHEMA)
    op.drop_index("ix_expedientes_fecha", "expedientes", schema=SCHEMA)
    op.drop_index("ix_expedientes_interesados", "expedientes", schema=SCHEMA)
    op.drop_index("ix_expedientes_nombre_trgm", "expedientes", schema=SCHEMA)
    for column in (
        "procedimiento_version",
        "fase",
        "iniciacion",
        "unidad",
        "asunto",
        "interesado_id",
        "interesado_nombre",
        "documentos_aportados",
        "tasas_pagadas",
        "propuesta",
        "resolucion",
        "silencio",
        "espera_evento",
        "espera_solicitud",
        "plazo_ampliado",
        "actualizado_at",
    ):
        op.drop_column("expedientes", column, schema=SCHEMA)
    op.execute(f'DELETE FROM "{SCHEMA}".expedientes WHERE asiento_id IS NULL')
    op.alter_column("expedientes", "asiento_id", nullable=False, schema=SCHEMA)
    op.alter_column("expedientes", "asiento_numero", nullable=False, schema=SCHEMA)
    catalogo = op.create_table(
        "procedimientos",
        sa.Column("codigo", sa.String(50), primary_key=True),
        sa.Column("denominacion", sa.String(255), nullable=False),
        sa.Column("norma", sa.Text, nullable=False),
        sa.Column("sia", sa.String(20)),
        sa.Column("plazo_resolucion_meses", sa.Integer, nullable=False),
        sa.Column("silencio", sa.String(20), nullable=False),
        schema=SCHEMA,
    )
    op.bulk_insert(
        catalogo,
        [
            {
                "codigo": "generico",
                "denominacion": "Procedimiento administrativo común (solicitud genérica)",
                "norma": "Ley 39/2015",
                "sia": None,
                "plazo_resolucion_meses": 3,
                "silencio": "estimatorio",
            }
        ],
    )
