"""tramitador: the expediente electrónico (ENI) - foliado and signed versions of the índice.

``eni_foliado`` numbers every document that enters an expediente; the app role may only
insert into it (a withdrawal is a new row). ``eni_indices`` keeps each frozen version of
the índice electrónico and, once the sellado answers, its XAdES-T signed bytes; a
signed version cannot change (trigger). ``eni_archivo`` lists the expedientes transferred
to the archive, with the conservation class of their procedure; ``eni_anexos`` keeps the anexos of
asientos the repositorio stored, until the expediente they open foliates them.

Revision ID: tramitador_0006
Revises: tramitador_0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.migrations_support import enable_tenant_rls, migration_attr

revision = "tramitador_0006"
down_revision = "tramitador_0005"
branch_labels = None
depends_on = None

SCHEMA = "tramitador"


def upgrade() -> None:
    role = migration_attr("app_role") or "consistorio_app"
    op.create_table(
        "eni_foliado",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("expediente_id", UUID(as_uuid=False), nullable=False),
        sa.Column("orden", sa.Integer, nullable=False),
        sa.Column("origen", sa.String(10), nullable=False),
        sa.Column("retira", sa.Integer),
        sa.Column("documento_id", UUID(as_uuid=False)),
        sa.Column("version", sa.Integer),
        sa.Column("identificador", sa.String(60)),
        sa.Column("titulo", sa.String(300), nullable=False),
        sa.Column("nombre", sa.String(255)),
        sa.Column("mime", sa.String(255)),
        sa.Column("tamano", sa.BigInteger),
        sa.Column("funcion_resumen", sa.String(10)),
        sa.Column("huella", sa.String(128)),
        sa.Column("metadatos", JSONB, nullable=False, server_default="{}"),
        sa.Column("notificado", sa.String(20)),
        sa.Column("motivo", sa.Text),
        sa.Column("incorporado_por", sa.String(200), nullable=False),
        sa.Column(
            "incorporado_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.UniqueConstraint("expediente_id", "orden", name="uq_eni_foliado_orden"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_eni_foliado_documento",
        "eni_foliado",
        ["expediente_id", "documento_id"],
        schema=SCHEMA,
    )
    op.create_table(
        "eni_indices",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("expediente_id", UUID(as_uuid=False), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("causa", sa.String(20), nullable=False),
        sa.Column("fase", sa.String(60)),
        sa.Column("estado", sa.String(10), nullable=False),
        sa.Column("solicitud_id", UUID(as_uuid=False), nullable=False),
        sa.Column("hasta_orden", sa.Integer, nullable=False),
        sa.Column("xml", sa.LargeBinary),
        sa.Column("sha256", sa.String(64)),
        sa.Column("firmante", sa.String(500)),
        sa.Column("sello_tiempo", sa.DateTime(timezone=True)),
        sa.Column("motivo", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("firmado_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("expediente_id", "version", name="uq_eni_indices_version"),
        schema=SCHEMA,
    )
    op.create_index("ix_eni_indices_solicitud", "eni_indices", ["solicitud_id"], schema=SCHEMA)
    op.create_table(
        "eni_archivo",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("expediente_id", UUID(as_uuid=False), nullable=False),
        sa.Column("clase", sa.String(20), nullable=False),
        sa.Column("anios", sa.Integer),
        sa.Column("serie", sa.String(100)),
        sa.Column(
            "archivado_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("archivado_por", sa.String(200), nullable=False),
        sa.Column("reabierto_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_eni_archivo_fecha", "eni_archivo", ["tenant_id", "archivado_at", "id"], schema=SCHEMA
    )
    op.create_index("ix_eni_archivo_expediente", "eni_archivo", ["expediente_id"], schema=SCHEMA)
    op.create_table(
        "eni_anexos",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("asiento_id", UUID(as_uuid=False), nullable=False),
        sa.Column("documento_id", UUID(as_uuid=False), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("datos", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("documento_id", "version", name="uq_eni_anexos_version"),
        schema=SCHEMA,
    )
    op.create_index("ix_eni_anexos_asiento", "eni_anexos", ["asiento_id"], schema=SCHEMA)
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".indice_firmado_inmutable() RETURNS trigger AS $$
        BEGIN
          IF OLD.estado = 'firmado' THEN
            RAISE EXCEPTION 'la versión % del índice está firmada: es inmutable', OLD.version;
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER indice_firmado_inmutable BEFORE UPDATE OR DELETE "
        f'ON "{SCHEMA}".eni_indices FOR EACH ROW '
        f'EXECUTE FUNCTION "{SCHEMA}".indice_firmado_inmutable()'
    )
    for table in ("eni_foliado", "eni_indices", "eni_archivo", "eni_anexos"):
        enable_tenant_rls(SCHEMA, table)
    op.execute(f'GRANT SELECT, INSERT ON "{SCHEMA}"."eni_anexos" TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."eni_archivo" TO "{role}"')
    # Insert-only, but for the mark of a document sent to be notified.
    op.execute(f'GRANT SELECT, INSERT ON "{SCHEMA}"."eni_foliado" TO "{role}"')
    op.execute(f'GRANT UPDATE (notificado) ON "{SCHEMA}"."eni_foliado" TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{SCHEMA}"."eni_indices" TO "{role}"')


def downgrade() -> None:
    op.drop_table("eni_anexos", schema=SCHEMA)
    op.drop_table("eni_archivo", schema=SCHEMA)
    op.drop_table("eni_indices", schema=SCHEMA)
    op.drop_table("eni_foliado", schema=SCHEMA)
    op.execute(f'DROP FUNCTION "{SCHEMA}".indice_firmado_inmutable()')
