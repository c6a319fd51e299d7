"""Tables of the pagos schema (the service's own; no other service reads them).

Amounts are whole cents (``BIGINT``), never floating point. Every table is under
row-level security but the card attempt's order number is unique across the
installation, because Redsys' notification names only the order: the SECURITY
DEFINER function of migration 0001 finds its tenant, and nothing else.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.kernel_tables import kernel_tables

SCHEMA = "pagos"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)

configuracion = Table(
    "configuracion",
    metadata,
    Column("tenant_id", String(5), primary_key=True),
    Column("redsys_comercio", String(9)),
    Column("redsys_terminal", String(3)),
    # The merchant key, write-only and only ever stored encrypted (services/pagos/claves.py:
    # envelope encryption, "v1.<kek id>.…"); no route or log shows it.
    Column("redsys_clave_cifrada", Text),
    Column("redsys_url", Text),
    Column("emisora", String(6)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

conceptos = Table(
    "conceptos",
    metadata,
    Column("tenant_id", String(5), primary_key=True),
    Column("codigo", String(20), primary_key=True),
    Column("nombre", Text, nullable=False),
    Column("tributo", String(3), nullable=False),
    Column("regla", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

liquidaciones = Table(
    "liquidaciones",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("ejercicio", Integer, nullable=False),
    Column("numero", Integer, nullable=False),
    Column("estado", String(10), nullable=False),
    Column("origen", String(20), nullable=False),
    Column("concepto", Text, nullable=False),
    Column("concepto_codigo", String(20)),
    Column("tributo", String(3), nullable=False),
    Column("importe_centimos", BigInteger, nullable=False),
    Column("obligado", JSONB, nullable=False),
    Column("obligado_identificador", String(20), nullable=False),
    Column("expediente_id", UUID(as_uuid=False)),
    Column("vencimiento", Date, nullable=False),
    Column("emisora", String(6), nullable=False),
    Column("referencia", String(12), nullable=False),
    Column("identificacion", String(10), nullable=False),
    Column("calculo", JSONB),
    Column("canal", String(12)),
    Column("justificante_pago", String(64)),
    Column("motivo_anulacion", Text),
    # The command that asked for it (tramitador.pago.requerir.v1), answered in pago.completado.
    Column("solicitud_id", UUID(as_uuid=False)),
    Column("solicitante", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("pagada_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_liquidaciones_numero", "tenant_id", "ejercicio", "numero", unique=True),
    # What the bank's cobros file names: emisora and referencia.
    Index("uq_liquidaciones_referencia", "tenant_id", "emisora", "referencia", unique=True),
    Index("ix_liquidaciones_obligado", "tenant_id", "obligado_identificador"),
    Index("ix_liquidaciones_created", "tenant_id", "created_at"),
    # A redelivered command answers the liquidación it already issued.
    Index(
        "uq_liquidaciones_solicitud",
        "tenant_id",
        "solicitante",
        "solicitud_id",
        unique=True,
        postgresql_where=text("solicitud_id IS NOT NULL"),
    ),
    # The vencimiento scheduler's question (only pendientes can expire).
    Index(
        "ix_liquidaciones_pendientes_vencimiento",
        "vencimiento",
        postgresql_where=text("estado = 'pendiente'"),
    ),
)

intentos = Table(
    "intentos",
    metadata,
    Column("orden", String(12), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column(
        "liquidacion_id",
        UUID(as_uuid=False),
        ForeignKey(f"{SCHEMA}.liquidaciones.id", name="fk_intentos_liquidacion"),
        nullable=False,
    ),
    Column("importe_centimos", BigInteger, nullable=False),
    Column("comercio", String(9), nullable=False),
    Column("terminal", String(3), nullable=False),
    Column("estado", String(12), nullable=False),
    Column("ds_response", String(4)),
    Column("autorizacion", String(6)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resuelto_at", DateTime(timezone=True)),
    Index("ix_intentos_liquidacion", "liquidacion_id"),
)

# The one way across tenants: the tenant of a card attempt, from its order number.
TENANT_DE_ORDEN_FN = f"{SCHEMA}.tenant_de_orden"
ORDEN_SEQ = f"{SCHEMA}.orden_seq"
# The vencimiento scheduler's one way across tenants (migration pagos_0006): which councils
# have pendientes with a vencimiento before a date, nothing else.
ENTIDADES_CON_VENCIDAS_FN = f"{SCHEMA}.entidades_con_vencidas"

# One row per NRC the council's banks reported: the unique key that makes a payment
# apply once, whatever file or how many times it comes in.
cobros = Table(
    "cobros",
    metadata,
    Column("tenant_id", String(5), primary_key=True),
    Column("nrc", String(22), primary_key=True),
    Column("importacion_id", UUID(as_uuid=False), nullable=False),
    Column("liquidacion_id", UUID(as_uuid=False)),
    Column("referencia", String(12), nullable=False),
    Column("importe_centimos", BigInteger, nullable=False),
    Column("fecha_cobro", Date, nullable=False),
    Column("entidad", String(4), nullable=False),
    Column("oficina", String(4), nullable=False),
    Column("resultado", String(12), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_cobros_liquidacion", "liquidacion_id"),
)

# The PDFs asked of the repositorio for each liquidación (carta de pago, justificante).
documentos = Table(
    "documentos",
    metadata,
    Column("solicitud_id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column(
        "liquidacion_id",
        UUID(as_uuid=False),
        ForeignKey(f"{SCHEMA}.liquidaciones.id", name="fk_documentos_liquidacion"),
        nullable=False,
    ),
    Column("tipo", String(20), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("documento_id", UUID(as_uuid=False)),
    Column("csv", String(29)),
    Column("url_verificacion", Text),
    Column("motivo", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resuelto_at", DateTime(timezone=True)),
    # One carta de pago and one justificante per liquidación.
    Index("uq_documentos_liquidacion_tipo", "tenant_id", "liquidacion_id", "tipo", unique=True),
)
