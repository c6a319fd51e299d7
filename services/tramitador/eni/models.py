"""Tables of the expediente electrónico: the foliado (documents in order, never removed),
the frozen, signed versions of the índice, and the archive."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.tramitador.metadata import metadata

# One row per document that entered an expediente, numbered 1, 2... per expediente. The
# app role may only insert: a withdrawal is a new row naming the one it withdraws.
foliado = Table(
    "eni_foliado",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("expediente_id", UUID(as_uuid=False), nullable=False),
    Column("orden", Integer, nullable=False),
    # emitido (by the tramitador), anexo (of the starting asiento), adjunto (by staff),
    # retirada (withdraws the entry ``retira``: the document stays in the índice).
    Column("origen", String(10), nullable=False),
    Column("retira", Integer),
    Column("documento_id", UUID(as_uuid=False)),
    Column("version", Integer),
    Column("identificador", String(60)),
    Column("titulo", String(300), nullable=False),
    Column("nombre", String(255)),
    Column("mime", String(255)),
    Column("tamano", BigInteger),
    Column("funcion_resumen", String(10)),
    Column("huella", String(128)),
    # The document's ENI metadata as the repositorio recorded it, and its CSV if issued.
    Column("metadatos", JSONB, nullable=False, server_default="{}"),
    Column("notificado", String(20)),
    Column("motivo", Text),
    Column("incorporado_por", String(200), nullable=False),
    Column("incorporado_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("expediente_id", "orden", name="uq_eni_foliado_orden"),
    Index("ix_eni_foliado_documento", "expediente_id", "documento_id"),
)

indices = Table(
    "eni_indices",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("expediente_id", UUID(as_uuid=False), nullable=False),
    Column("version", Integer, nullable=False),
    # Why it was frozen: fase (a phase closed), resolucion, solicitado (by staff), archivo.
    Column("causa", String(20), nullable=False),
    Column("fase", String(60)),
    # firmando (asked of the sellado), firmado, fallido.
    Column("estado", String(10), nullable=False),
    Column("solicitud_id", UUID(as_uuid=False), nullable=False),
    # The highest orden of the foliado this version lists.
    Column("hasta_orden", Integer, nullable=False),
    Column("xml", LargeBinary),
    Column("sha256", String(64)),
    Column("firmante", String(500)),
    Column("sello_tiempo", DateTime(timezone=True)),
    Column("motivo", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("firmado_at", DateTime(timezone=True)),
    UniqueConstraint("expediente_id", "version", name="uq_eni_indices_version"),
    Index("ix_eni_indices_solicitud", "solicitud_id"),
)

# An expediente transferred to the archive (its phase of state ``archivado``), with the
# conservation class its procedure gives; a reopened one keeps its row, dated.
archivo = Table(
    "eni_archivo",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("expediente_id", UUID(as_uuid=False), nullable=False),
    Column("clase", String(20), nullable=False),
    Column("anios", Integer),
    Column("serie", String(100)),
    Column("archivado_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("archivado_por", String(200), nullable=False),
    Column("reabierto_at", DateTime(timezone=True)),
    Index("ix_eni_archivo_fecha", "tenant_id", "archivado_at", "id"),
    Index("ix_eni_archivo_expediente", "expediente_id"),
)

# The anexos of asientos as the repositorio stored them (``repositorio.documento.almacenado.v1``
# with an asiento as referencia), kept until, and after, the expediente the asiento opens
# foliates them: the two events may arrive in either order.
anexos = Table(
    "eni_anexos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("asiento_id", UUID(as_uuid=False), nullable=False),
    Column("documento_id", UUID(as_uuid=False), nullable=False),
    Column("version", Integer, nullable=False),
    Column("datos", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("documento_id", "version", name="uq_eni_anexos_version"),
    Index("ix_eni_anexos_asiento", "asiento_id"),
)
