"""repositorio: emisiones (CSV, stamp and seal of a version) and the public lookup by CSV.

Revision ID: repositorio_0002
Revises: repositorio_0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "repositorio_0002"
down_revision = "repositorio_0001"
branch_labels = None
depends_on = None

SCHEMA = "repositorio"
_ESTADOS = ("pendiente", "sellando", "emitida", "fallida")


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "emisiones",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("documento_id", UUID(as_uuid=False), nullable=False),
        sa.Column("version_origen", sa.Integer, nullable=False),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("csv", sa.String(29)),
        sa.Column("url_verificacion", sa.String(2048)),
        sa.Column("version_emitida", sa.Integer),
        sa.Column("sha256", sa.String(64)),
        sa.Column("firmante", sa.String(500)),
        sa.Column("sello_tiempo", sa.DateTime(timezone=True)),
        sa.Column("codigo", sa.String(50)),
        sa.Column("motivo", sa.String(1000)),
        sa.Column("solicitud_id", UUID(as_uuid=False)),
        sa.Column("solicitante", sa.String(100)),
        sa.Column("referencia", JSONB),
        sa.Column("creado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("creado_por", sa.String(255), nullable=False),
        sa.Column("actualizado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("emitida_en", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["tenant_id", "documento_id"],
            [f"{SCHEMA}.documentos.tenant_id", f"{SCHEMA}.documentos.id"],
            name="fk_emisiones_documento",
        ),
        sa.ForeignKeyConstraint(
            ["documento_id", "version_origen"],
            [f"{SCHEMA}.versiones.documento_id", f"{SCHEMA}.versiones.version"],
            name="fk_emisiones_version_origen",
        ),
        sa.ForeignKeyConstraint(
            ["documento_id", "version_emitida"],
            [f"{SCHEMA}.versiones.documento_id", f"{SCHEMA}.versiones.version"],
            name="fk_emisiones_version_emitida",
        ),
        sa.CheckConstraint(
            "estado IN (" + ", ".join(f"'{e}'" for e in _ESTADOS) + ")",
            name="ck_emisiones_estado",
        ),
        # An issued emisión names its CSV, its new version and that version's content.
        sa.CheckConstraint(
            "estado <> 'emitida' OR (csv IS NOT NULL AND version_emitida IS NOT NULL "
            "AND sha256 IS NOT NULL AND emitida_en IS NOT NULL)",
            name="ck_emisiones_emitida_completa",
        ),
        sa.CheckConstraint(
            "csv IS NULL OR csv ~ '^[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){4}$'",
            name="ck_emisiones_csv",
        ),
        sa.CheckConstraint("sha256 IS NULL OR sha256 ~ '^[0-9a-f]{64}$'", name="ck_emisiones_sha"),
        schema=SCHEMA,
    )
    # A CSV names one document in the whole installation, whatever its tenant.
    op.create_index(
        "uq_emisiones_csv",
        "emisiones",
        ["csv"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("csv IS NOT NULL"),
    )
    # A command is carried out once per requester's solicitud, whatever its redeliveries.
    op.create_index(
        "uq_emisiones_solicitud",
        "emisiones",
        ["tenant_id", "solicitante", "solicitud_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("solicitud_id IS NOT NULL"),
    )
    # Whether a version is itself the result of an emisión (it is not issued twice).
    op.create_index(
        "uq_emisiones_version_emitida",
        "emisiones",
        ["tenant_id", "documento_id", "version_emitida"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("version_emitida IS NOT NULL"),
    )
    op.create_index(
        "ix_emisiones_documento", "emisiones", ["tenant_id", "documento_id"], schema=SCHEMA
    )
    enable_tenant_rls(SCHEMA, "emisiones")
    # An emisión changes state, but is never deleted: it is the record of a CSV given out.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."emisiones" TO "{role}"')
    # 0001 granted every table to the app role after the kernel had made the audit trail
    # append-only, giving UPDATE and DELETE on it back; an audit trail the service can
    # rewrite proves nothing, so they are taken away again.
    op.execute(f'REVOKE UPDATE, DELETE ON "{SCHEMA}"."audit_log" FROM "{role}"')

    # The public download finds a document by its CSV alone, before anyone knows the
    # tenant. The tables keep their row-level security; this function, owned by the
    # migration owner, is the one way across tenants and tells only where an issued
    # document is. search_path is pinned so nobody can slip objects in front of it.
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".documento_emitido(p_csv text)
        RETURNS TABLE (tenant_id varchar, documento_id uuid, version integer, sha256 varchar)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
            SELECT e.tenant_id, e.documento_id, e.version_emitida, e.sha256
            FROM "{SCHEMA}".emisiones AS e
            WHERE e.csv = p_csv AND e.estado = 'emitida'
        $$
        """
    )
    op.execute(f'REVOKE ALL ON FUNCTION "{SCHEMA}".documento_emitido(text) FROM PUBLIC')
    op.execute(f'GRANT EXECUTE ON FUNCTION "{SCHEMA}".documento_emitido(text) TO "{role}"')


def downgrade() -> None:
    op.execute(f'DROP FUNCTION IF EXISTS "{SCHEMA}".documento_emitido(text)')
    op.drop_table("emisiones", schema=SCHEMA)
