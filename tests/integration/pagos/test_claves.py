"""The Redsys merchant key at rest, on the real PostgreSQL: the column holds a ciphertext,
a KEK rotation re-wraps every row and payments keep working, a wrong KEK is a clear 503,
and the migration encrypts the keys a database already held in clear."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.catalog import all_migrations
from services.common.db import asyncpg_url
from services.common.migrations_support import _config
from services.common.settings import Settings
from services.pagos import claves
from services.pagos.settings import PagosSettings
from tests.support.pagos import CLAVE_PRUEBAS, Entidad, liquidacion

pytestmark = pytest.mark.integration

DESARROLLO = claves.llavero_de(PagosSettings(), "test")


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(database_url))
    yield engine
    await engine.dispose()


@pytest.fixture
def restaurar() -> Iterator[None]:
    yield
    claves.instalar(DESARROLLO)


async def _guardada(owner: AsyncEngine, tenant: str) -> str:
    async with owner.connect() as conn:
        valor = await conn.scalar(
            text("SELECT redsys_clave_cifrada FROM pagos.configuracion WHERE tenant_id = :t"),
            {"t": tenant},
        )
    assert isinstance(valor, str)
    return valor


async def test_the_stored_column_is_not_the_key(
    client: httpx.AsyncClient, entidad: Entidad, owner: AsyncEngine
) -> None:
    guardada = await _guardada(owner, entidad.tenant)
    assert guardada != CLAVE_PRUEBAS
    assert CLAVE_PRUEBAS not in guardada
    assert guardada.startswith("v1.desarrollo.")
    assert DESARROLLO.descifrar(guardada, tenant_id=entidad.tenant) == CLAVE_PRUEBAS
    # The configuration view says a key is there and shows nothing of it.
    vista = await client.get("/api/v1/pagos/configuracion", headers=entidad.admin)
    assert vista.json()["redsys"]["clave_configurada"] is True
    assert CLAVE_PRUEBAS not in vista.text and guardada not in vista.text


async def test_rotation_rewraps_every_row_and_payments_keep_working(
    client: httpx.AsyncClient, entidad: Entidad, owner: AsyncEngine, restaurar: None
) -> None:
    datos = await liquidacion(client, entidad)
    nueva = claves.Llavero({"k2": os.urandom(32), **DESARROLLO.claves}, "k2")
    claves.instalar(nueva)
    try:
        async with owner.begin() as conn:
            assert await claves.rotar(conn, nueva) >= 1
        guardada = await _guardada(owner, entidad.tenant)
        assert guardada.startswith("v1.k2.")
        # Without the development KEK at all: the rotated row still signs a payment.
        claves.instalar(claves.Llavero({"k2": nueva.claves["k2"]}, "k2"))
        pago = await client.post(
            f"/api/v1/pagos/liquidaciones/{datos['id']}/pago-tarjeta", headers=entidad.ciudadano
        )
        assert pago.status_code == 201, pago.text
        # A second pass has nothing left to do.
        async with owner.begin() as conn:
            assert await claves.rotar(conn, nueva) == 0
    finally:
        # Back under the development KEK for the rest of the session's tests.
        vuelta = claves.Llavero(nueva.claves, claves.ID_DESARROLLO)
        async with owner.begin() as conn:
            await claves.rotar(conn, vuelta)
    assert (await _guardada(owner, entidad.tenant)).startswith("v1.desarrollo.")


async def test_a_wrong_kek_is_a_clear_503_that_shows_no_key(
    client: httpx.AsyncClient, entidad: Entidad, restaurar: None
) -> None:
    datos = await liquidacion(client, entidad)
    claves.instalar(claves.Llavero({"otra": os.urandom(32)}, "otra"))
    pago = await client.post(
        f"/api/v1/pagos/liquidaciones/{datos['id']}/pago-tarjeta", headers=entidad.ciudadano
    )
    assert pago.status_code == 503, pago.text
    assert pago.headers["content-type"].startswith("application/problem+json")
    assert "'desarrollo'" in pago.json()["detail"]
    assert CLAVE_PRUEBAS not in pago.text
    # Same KEK id, other bytes: named as such.
    claves.instalar(claves.Llavero({claves.ID_DESARROLLO: os.urandom(32)}, "desarrollo"))
    otra = await client.post(
        f"/api/v1/pagos/liquidaciones/{datos['id']}/pago-tarjeta", headers=entidad.ciudadano
    )
    assert otra.status_code == 503
    assert "no descifra" in otra.json()["detail"]


async def test_the_migration_encrypts_keys_stored_in_clear(database_url: str) -> None:
    """A database at pagos_0004 with a key in clear: upgrading to head leaves a ciphertext."""
    admin = make_url(database_url).set(database="postgres")
    nombre = f"consistorio_claves_{uuid.uuid4().hex[:8]}"
    servidor = create_async_engine(
        asyncpg_url(admin.render_as_string(hide_password=False)), isolation_level="AUTOCOMMIT"
    )
    async with servidor.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{nombre}"'))
    url = make_url(database_url).set(database=nombre).render_as_string(hide_password=False)
    ajustes = Settings(environment="test", database_url=url)
    historias = {m.schema: m for m in all_migrations()}

    def hasta(esquema: str, revision: str) -> None:
        config = _config(historias[esquema], url, ajustes.database_app_role, None)
        command.upgrade(config, revision)

    engine = create_async_engine(asyncpg_url(url))
    try:
        await asyncio.to_thread(hasta, "plataforma", "head")
        await asyncio.to_thread(hasta, "pagos", "pagos_0004")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO pagos.configuracion (tenant_id, redsys_comercio, "
                    "redsys_terminal, redsys_clave, redsys_url) "
                    "VALUES ('03014', '999008881', '001', :k, 'https://redsys')"
                ),
                {"k": CLAVE_PRUEBAS},
            )
        await asyncio.to_thread(hasta, "pagos", "head")
        async with engine.connect() as conn:
            guardada = await conn.scalar(
                text("SELECT redsys_clave_cifrada FROM pagos.configuracion")
            )
        assert isinstance(guardada, str) and guardada.startswith("v1.")
        assert CLAVE_PRUEBAS not in guardada
        assert claves.vigente().descifrar(guardada, tenant_id="03014") == CLAVE_PRUEBAS
    finally:
        await engine.dispose()
        async with servidor.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{nombre}" WITH (FORCE)'))
        await servidor.dispose()
