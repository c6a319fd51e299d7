"""Tables of oficinas, libros and the numbering mode of each year."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from services.registro.metadata import metadata

oficinas = Table(
    "oficinas",
    metadata,
    Column("tenant_id", String(5), nullable=False),
    Column("codigo", String(9), nullable=False),
    Column("nombre", String(80), nullable=False),
    # Goes into the numbers of the oficina's asientos in per-oficina mode (1 to 999).
    Column("prefijo", SmallInteger, nullable=False),
    Column("estado", String(10), nullable=False),
    Column("creada_por", String(255), nullable=False),
    Column("creada_en", DateTime(timezone=True), nullable=False),
    Column("cerrada_por", String(255)),
    Column("cerrada_en", DateTime(timezone=True)),
    Column("motivo_cierre", Text),
    # The oficina of the registro electrónico: the sede's asientos are made there.
    Column("electronica", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("tenant_id", "codigo"),
    UniqueConstraint("tenant_id", "prefijo", name="uq_oficinas_prefijo"),
    CheckConstraint("estado IN ('activa', 'cerrada')", name="ck_oficinas_estado"),
    # At most one oficina of the registro electrónico per entidad.
    Index(
        "ux_oficinas_electronica", "tenant_id", unique=True, postgresql_where=text("electronica")
    ),
)


libros = Table(
    "libros",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("tipo", String(10), nullable=False),
    # NULL: the central libro of the tipo; otherwise the oficina whose libro it is.
    Column("oficina", String(9)),
    Column("estado", String(10), nullable=False),
    Column("abierto_por", String(255), nullable=False),
    Column("abierto_en", DateTime(timezone=True), nullable=False),
    Column("cerrado_por", String(255)),
    Column("cerrado_en", DateTime(timezone=True)),
    Column("motivo_cierre", Text),
    ForeignKeyConstraint(
        ["tenant_id", "oficina"],
        ["registro.oficinas.tenant_id", "registro.oficinas.codigo"],
        name="fk_libros_oficina",
    ),
    CheckConstraint("tipo IN ('entrada', 'salida')", name="ck_libros_tipo"),
    CheckConstraint("estado IN ('abierto', 'cerrado')", name="ck_libros_estado"),
    # One libro per tipo and ámbito: a closed one is opened again, not duplicated.
    Index(
        "ux_libros_central",
        "tenant_id",
        "tipo",
        unique=True,
        postgresql_where=text("oficina IS NULL"),
    ),
    Index(
        "ux_libros_oficina",
        "tenant_id",
        "tipo",
        "oficina",
        unique=True,
        postgresql_where=text("oficina IS NOT NULL"),
    ),
)


# The entity's numbering mode over time: each row is a mode from a year on. No rows
# means central, as every entity numbered before modes existed.
numeracion = Table(
    "numeracion",
    metadata,
    Column("tenant_id", String(5), nullable=False),
    Column("desde_anio", Integer, nullable=False),
    Column("modo", String(10), nullable=False),
    Column("configurado_por", String(255), nullable=False),
    Column("configurado_en", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "desde_anio"),
    CheckConstraint("modo IN ('central', 'oficina')", name="ck_numeracion_modo"),
)
