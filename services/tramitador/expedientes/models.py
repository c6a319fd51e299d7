"""Tables of the expedientes: the case file, its trámites, plazos and history."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.tramitador.metadata import metadata

expedientes = Table(
    "expedientes",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("anio", Integer, nullable=False),
    Column("secuencia", Integer, nullable=False),
    Column("numero", String(20), nullable=False),
    Column("procedimiento", String(60), nullable=False),
    Column("procedimiento_version", Integer, nullable=False),
    Column("estado", String(20), nullable=False),
    Column("fase", String(60), nullable=False),
    Column("iniciacion", String(10), nullable=False),
    Column("unidad", String(100)),
    Column("asunto", Text),
    Column("asiento_id", UUID(as_uuid=False)),
    Column("asiento_numero", String(20)),
    Column("fecha_inicio", DateTime(timezone=True), nullable=False),
    Column("interesados", JSONB, nullable=False),
    # The first interesado, denormalised for search and the citizen's own listing.
    Column("interesado_id", String(20)),
    Column("interesado_nombre", String(300)),
    Column("documentos_aportados", JSONB, nullable=False, server_default="[]"),
    Column("tasas_pagadas", JSONB, nullable=False, server_default="[]"),
    Column("propuesta", String(30)),
    Column("resolucion", String(30)),
    Column("silencio", String(20)),
    # The answer event the current phase waits for, and the request it answers.
    Column("espera_evento", String(100)),
    Column("espera_solicitud", UUID(as_uuid=False)),
    Column("plazo_ampliado", Boolean, nullable=False, server_default="false"),
    Column("actualizado_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "anio", "secuencia", name="uq_expedientes_numero"),
    UniqueConstraint("tenant_id", "asiento_id", name="uq_expedientes_asiento"),
)

tramites = Table(
    "tramites",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("expediente_id", UUID(as_uuid=False), nullable=False),
    Column("fase", String(60), nullable=False),
    Column("codigo", String(60), nullable=False),
    Column("nombre", String(300), nullable=False),
    Column("informe", Boolean, nullable=False, server_default="false"),
    Column("unidad", String(100)),
    Column("rol", String(60)),
    Column("persona", String(200)),
    Column("estado", String(12), nullable=False),
    Column("vencimiento", Date),
    Column("sentido", String(30)),
    Column("procedimiento", String(60), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completado_at", DateTime(timezone=True)),
    Column("completado_por", String(200)),
    Index("ix_tramites_bandeja", "tenant_id", "estado", "vencimiento", "id"),
    Index("ix_tramites_expediente", "expediente_id"),
)

plazos = Table(
    "plazos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("expediente_id", UUID(as_uuid=False), nullable=False),
    Column("tipo", String(20), nullable=False),
    Column("inicio", Date, nullable=False),
    Column("vencimiento", Date, nullable=False),
    Column("estado", String(12), nullable=False),
    Column("suspendido_desde", Date),
    Column("dias_suspendidos", Integer, nullable=False, server_default="0"),
    Column("accion_al_vencer", String(60)),
    Column("procesado_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_plazos_vencimiento", "tenant_id", "estado", "vencimiento"),
    Index("ix_plazos_expediente", "expediente_id"),
)

historial = Table(
    "historial",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("expediente_id", UUID(as_uuid=False), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", String(200), nullable=False),
    Column("accion", String(60), nullable=False),
    Column("fase_desde", String(60)),
    Column("fase_hacia", String(60)),
    Column("datos", JSONB, nullable=False, server_default="{}"),
    Index("ix_historial_expediente", "expediente_id", "id"),
)
