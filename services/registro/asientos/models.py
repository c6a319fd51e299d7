"""Tables of asientos and their annulments: insert-only, never updated nor deleted."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.registro.metadata import metadata

asientos = Table(
    "asientos",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("tipo", String(10), nullable=False),
    Column("anio", Integer, nullable=False),
    Column("secuencia", Integer, nullable=False),
    Column("numero", String(20), nullable=False),
    Column("fecha_registro", DateTime(timezone=True), nullable=False),
    Column("resumen", String(240), nullable=False),
    Column("unidad_destino", String(9), nullable=False),
    Column("procedimiento", String(50)),
    Column("interesados", JSONB, nullable=False),
    Column("registrado_por", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The full SICRES 3.0 field set (migration registro_0006).
    Column("canal", String(12), nullable=False, server_default="presencial"),
    Column("oficina", String(21)),
    Column("origen", JSONB),
    Column("entidad_registral_destino", String(21)),
    Column("codigo_asunto", String(16)),
    Column("referencia_externa", String(16)),
    Column("numero_expediente", String(80)),
    Column("transporte", JSONB),
    Column("contacto_usuario", String(160)),
    Column("documentacion_fisica", String(1), nullable=False, server_default="3"),
    Column("observaciones", String(50)),
    Column("expone", Text),
    Column("solicita", Text),
    Column("corrige", UUID(as_uuid=False), ForeignKey("registro.asientos.id")),
    Column("anexos", JSONB, nullable=False, server_default="[]"),
)


# The annulment of an asiento (at most one per asiento, never undone): the asiento
# row stays as it was recorded, and its number is never given again.
anulaciones = Table(
    "anulaciones",
    metadata,
    Column("asiento_id", UUID(as_uuid=False), ForeignKey(asientos.c.id), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("motivo", Text, nullable=False),
    Column("anulado_por", String(255), nullable=False),
    Column("anulado_en", DateTime(timezone=True), nullable=False),
)
