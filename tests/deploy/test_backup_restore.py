"""Backup and restore of one schema plus the blobs, on real PostgreSQL and an S3 server.

The runbook in docs/operations.md says an operator can lose one service's schema
and a document's blob and get them back from last night's backup without touching
the other services: this is that runbook, run.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from minio import Minio
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from services.backup import BackupError, backup, restore, schemas
from services.bootstrap import migrate
from services.cli import app as cli
from services.common.db import asyncpg_url
from services.common.settings import Settings
from services.common.tenants import Tenant, add_tenant
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, running_platform
from tests.support.servers import POSTGRES_ADMIN_URL, require_server

pytestmark = pytest.mark.integration

TENANT = "03014"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
async def own_settings(settings: Settings, s3_endpoint: str) -> AsyncIterator[Settings]:
    """A database of this test alone (it drops a schema), migrated, with one tenant."""
    admin = make_url(POSTGRES_ADMIN_URL)
    require_server("PostgreSQL", admin.host or "127.0.0.1", admin.port or 5432)
    name = f"consistorio_backup_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    own = settings.model_copy(
        update={
            "database_url": url,
            "s3_endpoint": s3_endpoint,
            "s3_access_key": "test",
            "s3_secret_key": SecretStr("test-secret"),
            "s3_secure": False,
            "s3_bucket": f"documentos-{uuid.uuid4().hex[:8]}",
        }
    )
    await migrate(own)
    tenant_engine = create_async_engine(asyncpg_url(url))
    async with tenant_engine.begin() as conn:
        await add_tenant(conn, Tenant(TENANT, "Ayuntamiento de prueba", "L01030149"))
    await tenant_engine.dispose()
    yield own
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


async def _owner(own: Settings, sql: str) -> None:
    engine = create_async_engine(asyncpg_url(str(own.database_url)))
    async with engine.begin() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def test_a_lost_schema_and_blob_come_back_from_the_backup(
    own_settings: Settings, token: Callable[..., str], tmp_path: Path
) -> None:
    auth = bearer(token(TENANT, "registro"))
    async with (
        running_platform(own_settings, ["registro"]) as platform,
        asgi_client(platform.apps["registro"]) as client,
    ):
        created = await client.post(
            "/api/v1/registro/asientos", json=factories.asiento(), headers=auth
        )
        assert created.status_code == 201, created.text
        asiento_id = created.json()["id"]
        before = (await client.get(f"/api/v1/registro/asientos/{asiento_id}", headers=auth)).json()

    s3 = Minio(str(own_settings.s3_endpoint), "test", "test-secret", secure=False)
    s3.make_bucket(own_settings.s3_bucket)
    key, blob = f"{TENANT}/ab/{'ab' * 32}", b"%PDF-1.7 justificante"
    s3.put_object(own_settings.s3_bucket, key, io.BytesIO(blob), len(blob))

    made = await asyncio.to_thread(backup, own_settings, tmp_path / "copia")
    assert made.schemas == schemas() and made.blobs == 1
    assert (tmp_path / "copia" / "registro.dump").stat().st_size > 0

    # The disaster: the registro's schema and the blob are gone.
    await _owner(own_settings, 'DROP SCHEMA "registro" CASCADE')
    s3.remove_object(own_settings.s3_bucket, key)

    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke,
        cli,
        ["restore", str(tmp_path / "copia"), "--schema", "registro"],
        env={
            "DATABASE_URL": str(own_settings.database_url),
            "S3_ENDPOINT": str(own_settings.s3_endpoint),
            "S3_ACCESS_KEY": "test",
            "S3_SECRET_KEY": "test-secret",
            "S3_SECURE": "false",
            "S3_BUCKET": own_settings.s3_bucket,
        },
    )
    assert result.exit_code == 0, result.output
    assert "restaurados registro; 1 blobs repuestos" in result.output

    assert s3.get_object(own_settings.s3_bucket, key).read() == blob
    async with (
        running_platform(own_settings, ["registro"]) as platform,
        asgi_client(platform.apps["registro"]) as client,
    ):
        after = await client.get(f"/api/v1/registro/asientos/{asiento_id}", headers=auth)
        assert after.status_code == 200, after.text
        assert after.json() == before
        # Row-level security and the app role's grants came back with the schema.
        other = bearer(token("99999", "registro"))
        hidden = await client.get(f"/api/v1/registro/asientos/{asiento_id}", headers=other)
        assert hidden.status_code in (401, 403, 404)


def test_restore_refuses_what_is_not_a_backup(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="manifest"):
        restore(settings, tmp_path)
    with pytest.raises(BackupError, match="desconocidos"):
        backup(settings, tmp_path, only=["no-such-schema"])
