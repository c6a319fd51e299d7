"""Tables of the notificaciones schema (the service's own; no other service reads them).

One row per notification to one interesado, and one per postal delivery attempt.
Both are under row-level security; the expiry scheduler finds the due rows of every
tenant through one SECURITY DEFINER function (migration 0001) that answers only
their tenant and id, and then works inside each tenant's own transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.kernel_tables import kernel_tables

SCHEMA = "notificaciones"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)

notificaciones = Table(
    "notificaciones",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("estado", String(25), nullable=False),
    Column("canal", String(12), nullable=False),
    Column("documento_id", UUID(as_uuid=False), nullable=False),
    Column("documento_version", Integer),
    Column("documento_nombre", String(255)),
    # The CSV of the version notified, when it was issued with one (migration 0005): the
    # addressee downloads it, once practicada, at the public /verificar/{csv}/documento.
    Column("documento_csv", String(29)),
    Column("documento_url", Text),
    Column("expediente_id", String(100)),
    Column("concepto", String(500), nullable=False),
    Column("emisor", String(200), nullable=False),
    Column("interesado", JSONB, nullable=False),
    Column("interesado_identificador", String(20), nullable=False),
    Column("representante_identificador", String(20)),
    Column("origen", String(12), nullable=False),
    Column("solicitud_id", UUID(as_uuid=False)),
    Column("creada_en", DateTime(timezone=True), nullable=False),
    Column("puesta_en", DateTime(timezone=True)),
    Column("vence_en", DateTime(timezone=True)),
    Column("efectos_en", DateTime(timezone=True)),
    Column("fecha_legal", Date),
    Column("publicacion", JSONB),
    Column("motivo", Text),
    Column("actualizada_en", DateTime(timezone=True), nullable=False),
    # The scheduler's question: which notifications at disposal are due now.
    Index(
        "ix_notificaciones_vence",
        "vence_en",
        postgresql_where=text("estado = 'puesta_disposicion'"),
    ),
    Index("ix_notificaciones_interesado", "tenant_id", "interesado_identificador"),
    Index(
        "ix_notificaciones_representante",
        "tenant_id",
        "representante_identificador",
        postgresql_where=text("representante_identificador IS NOT NULL"),
    ),
    Index("ix_notificaciones_expediente", "tenant_id", "expediente_id"),
    # A command of the tramitador creates its notifications once, however often delivered.
    Index(
        "uq_notificaciones_solicitud",
        "tenant_id",
        "solicitud_id",
        "interesado_identificador",
        unique=True,
        postgresql_where=text("solicitud_id IS NOT NULL"),
    ),
)

intentos = Table(
    "intentos",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("notificacion_id", UUID(as_uuid=False), ForeignKey(notificaciones.c.id), nullable=False),
    Column("resultado", String(12), nullable=False),
    Column("en", DateTime(timezone=True), nullable=False),
    Column("receptor_nombre", String(200)),
    Column("receptor_nif", String(20)),
    Column("valido", Boolean, nullable=False),
    Column("motivo", Text),
    Column("registrado_por", String(255), nullable=False),
    Column("registrado_en", DateTime(timezone=True), nullable=False),
    Index("ix_intentos_notificacion", "notificacion_id"),
)

# SECURITY DEFINER function of migration 0001: (tenant_id, id) of the electronic
# notifications due at an instant, across tenants, oldest first.
VENCIDAS_FN = f"{SCHEMA}.vencidas"

# One aviso per notification and channel, ever (art. 41.6): the unique key is what
# keeps a second identical aviso from being created, and the state machine of
# avisos_domain.EstadoAviso what keeps one from being sent twice.
avisos = Table(
    "avisos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("notificacion_id", UUID(as_uuid=False), ForeignKey(notificaciones.c.id), nullable=False),
    Column("canal", String(5), nullable=False),
    Column("destino", String(254), nullable=False),
    Column("idioma", String(2), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("intentos", Integer, nullable=False),
    Column("proximo_en", DateTime(timezone=True), nullable=False),
    Column("reclamado_en", DateTime(timezone=True)),
    Column("enviado_en", DateTime(timezone=True)),
    Column("referencia", String(255)),
    Column("error", Text),
    Column("creado_en", DateTime(timezone=True), nullable=False),
    Index(
        "ix_avisos_pendientes",
        "proximo_en",
        postgresql_where=text("estado IN ('pendiente', 'enviando')"),
    ),
    Index("ix_avisos_tenant_reclamado", "tenant_id", "reclamado_en"),
    # Never two avisos for the same notification and channel.
    UniqueConstraint("notificacion_id", "canal", name="uq_avisos_notificacion_canal"),
)

# SECURITY DEFINER function of migration 0002: (tenant_id, id) of the avisos to
# attend at an instant (due pending ones, and claimed ones past their deadline).
AVISOS_FN = f"{SCHEMA}.avisos_por_atender"

# The time-stamp of every state change (evidencias.py). The app role may not UPDATE
# datos or huella (migration 0003): what was stamped stays.
sellos = Table(
    "sellos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("notificacion_id", UUID(as_uuid=False), ForeignKey(notificaciones.c.id), nullable=False),
    Column("hito", String(25), nullable=False),
    Column("datos", LargeBinary, nullable=False),
    Column("huella", String(64), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("token", LargeBinary),
    Column("gen_time", DateTime(timezone=True)),
    Column("motivo", Text),
    Column("solicitado_en", DateTime(timezone=True), nullable=False),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
    Index("ix_sellos_notificacion", "notificacion_id"),
)

# The acuse (certificación) of a notification's outcome, issued by the repositorio
# (acuses.py): one per notification.
acuses = Table(
    "acuses",
    metadata,
    Column(
        "notificacion_id", UUID(as_uuid=False), ForeignKey(notificaciones.c.id), primary_key=True
    ),
    Column("tenant_id", String(5), nullable=False),
    Column("solicitud_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("hito", String(25), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("documento_id", UUID(as_uuid=False)),
    Column("version", Integer),
    Column("csv", String(29)),
    Column("url_verificacion", Text),
    Column("motivo", Text),
    Column("solicitado_en", DateTime(timezone=True), nullable=False),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
)

# A command of the tramitador waiting for the repositorio's answer about its document
# (repositorio.documento.consultar.v1): one per solicitud, answered once (migration 0005).
consultas = Table(
    "consultas",
    metadata,
    Column("tenant_id", String(5), primary_key=True),
    Column("solicitud_id", UUID(as_uuid=False), primary_key=True),
    Column("documento_id", UUID(as_uuid=False), nullable=False),
    Column("datos", JSONB, nullable=False),
    Column("emisor", String(200), nullable=False),
    Column("estado", String(12), nullable=False),
    Column("creada_en", DateTime(timezone=True), nullable=False),
    Column("atendida_en", DateTime(timezone=True)),
)
