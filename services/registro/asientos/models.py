"""Tables of asientos and their annulments: insert-only, never updated nor deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
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

# The register's reading paths (migrations 0003, 0006 and 0010): newest first per book,
# unit, oficina and author, the number, and the interesados' search.
Index("ix_asientos_tenant_numero", asientos.c.tenant_id, asientos.c.numero, unique=True)


def _newest_first(name: str, *columns: Any, **options: Any) -> Index:
    """An index listing a tenant's asientos by ``columns``, newest first (as pages read)."""
    newest = (asientos.c.fecha_registro.desc(), asientos.c.id.desc())
    return Index(name, asientos.c.tenant_id, *columns, *newest, **options)


_newest_first("ix_asientos_tenant_fecha_id")
_newest_first("ix_asientos_tenant_unidad", asientos.c.unidad_destino)
_newest_first(
    "ix_asientos_tenant_oficina",
    asientos.c.oficina,
    postgresql_where=asientos.c.oficina.is_not(None),
)
_newest_first("ix_asientos_registrado_por", asientos.c.registrado_por)
Index("ix_asientos_corrige", asientos.c.corrige, postgresql_where=asientos.c.corrige.is_not(None))
# Trigram search over SQL functions the migrations define (unaccented, lower-cased text).
Index(
    "ix_asientos_nombres_trgm",
    func.registro.nombres_interesados(asientos.c.interesados).label("nombres"),
    postgresql_using="gin",
    postgresql_ops={"nombres": "public.gin_trgm_ops"},
)
Index(
    "ix_asientos_resumen_trgm",
    func.registro.texto_busqueda(asientos.c.resumen).label("resumen_busqueda"),
    postgresql_using="gin",
    postgresql_ops={"resumen_busqueda": "public.gin_trgm_ops"},
)
Index(
    "ix_asientos_interesados",
    asientos.c.interesados,
    postgresql_using="gin",
    postgresql_ops={"interesados": "jsonb_path_ops"},
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
