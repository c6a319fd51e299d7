"""The registry of entidades locales (tenants), keyed by INE code.

Kept in the kernel's own schema ``plataforma``; services only read it (to refuse
tokens of unknown or disabled tenants), the CLI manages it as the owner.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Database

__all__ = [
    "DEMO_TENANTS",
    "PLATFORM_SCHEMA",
    "Tenant",
    "TenantDirectory",
    "add_tenant",
    "list_tenants",
    "tenants_table",
    "validate_ine_code",
    "validate_dir3",
]

PLATFORM_SCHEMA = "plataforma"
platform_metadata = MetaData(schema=PLATFORM_SCHEMA)

tenants_table = Table(
    "tenants",
    platform_metadata,
    Column("ine_code", String(5), primary_key=True),
    Column("nombre", String(200), nullable=False),
    Column("dir3", String(21), nullable=False),
    Column("activo", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

_INE = re.compile(r"^\d{5}$")
_DIR3 = re.compile(r"^[A-Z][A-Z0-9]{8}$")


@dataclass(frozen=True)
class Tenant:
    """One entidad local."""

    ine_code: str
    nombre: str
    dir3: str
    activo: bool = True


DEMO_TENANTS = (
    Tenant("03014", "Ayuntamiento de Alicante", "L01030149"),
    Tenant("46250", "Ajuntament de València", "L01462508"),
)


def validate_ine_code(code: str) -> str:
    """An INE municipality code is five digits (province + municipality)."""
    if not _INE.match(code):
        raise ValueError(f"código INE no válido: {code!r} (se esperan 5 dígitos)")
    return code


def validate_dir3(code: str) -> str:
    """A DIR3 unit code: one letter and eight letters or digits (e.g. L01030149)."""
    if not _DIR3.match(code):
        raise ValueError(f"código DIR3 no válido: {code!r}")
    return code


async def add_tenant(conn: AsyncConnection, tenant: Tenant) -> None:
    """Adds or updates a tenant (idempotent, so seeding twice is harmless)."""
    validate_ine_code(tenant.ine_code)
    validate_dir3(tenant.dir3)
    stmt = insert(tenants_table).values(
        ine_code=tenant.ine_code, nombre=tenant.nombre, dir3=tenant.dir3, activo=tenant.activo
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["ine_code"],
        set_={"nombre": tenant.nombre, "dir3": tenant.dir3, "activo": tenant.activo},
    )
    await conn.execute(stmt)


async def list_tenants(conn: AsyncConnection) -> list[Tenant]:
    """All tenants, by INE code."""
    rows = await conn.execute(select(tenants_table).order_by(tenants_table.c.ine_code))
    return [Tenant(r.ine_code, r.nombre, r.dir3, r.activo) for r in rows]


class TenantDirectory:
    """Looks tenants up with a short cache: token checks and seals need them on every call."""

    def __init__(self, db: Database, *, cache_seconds: float = 30.0) -> None:
        self._db = db
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Tenant | None]] = {}

    async def get(self, ine_code: str) -> Tenant | None:
        """The tenant with this INE code, or None if there is none."""
        hit = self._cache.get(ine_code)
        now = time.monotonic()
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(tenants_table).where(tenants_table.c.ine_code == ine_code)
                )
            ).first()
        tenant = Tenant(row.ine_code, row.nombre, row.dir3, row.activo) if row else None
        self._cache[ine_code] = (now, tenant)
        return tenant

    async def is_active(self, ine_code: str) -> bool:
        """True for a known tenant that is not disabled."""
        tenant = await self.get(ine_code)
        return tenant is not None and tenant.activo
