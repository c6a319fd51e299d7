"""An issuing saga whose seal never came is resumed by the repositorio's reconciler.

The first platform has no sellado: the emisión reserves its CSV, stamps it and waits
for a seal that is not coming. The next platform, with a sellado, finds it stalled,
asks for the same CSV again and finishes the saga: one issued version, with the code
that was reserved the first time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from services.bootstrap import Platform, build_platform
from services.common.bus.inprocess import InProcessTransport
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.repositorio.models import emisiones
from services.repositorio.storage.filesystem import FilesystemBlobStore
from tests.integration.test_repositorio_emision import emitir, upload
from tests.support.pades_material import minimal_pdf
from tests.support.platforms import asgi_client, bearer
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@asynccontextmanager
async def platform_of(
    settings: Settings, services: Sequence[str], blobs: Path
) -> AsyncIterator[Platform]:
    platform = await build_platform(settings, list(services), transport=InProcessTransport())
    platform.apps["repositorio"].state.blob_store = FilesystemBlobStore(blobs)
    await platform.start()
    try:
        yield platform
    finally:
        await platform.close()


async def emision_row(platform: Platform, tenant: str, emision_id: str) -> Any:
    async with tenant_transaction(platform.db, tenant) as session:
        return (await session.execute(select(emisiones).where(emisiones.c.id == emision_id))).one()


async def test_a_stalled_emision_is_resumed_and_issued_once(
    settings: Settings, tmp_path: Path, new_tenant, token
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    blobs = tmp_path / "documentos"
    quick = settings.model_copy(update={"emision_wait_seconds": 0})

    async with (
        platform_of(quick, ["csv", "repositorio"], blobs) as first,
        asgi_client(first.apps["repositorio"]) as client,
    ):
        documento = await upload(client, user, minimal_pdf())
        opened = await emitir(client, user, documento["id"])
        assert opened.status_code == 202, opened.text
        emision_id = opened.json()["id"]

        async def sealing() -> Any:
            row = await emision_row(first, tenant, emision_id)
            return row if row.estado == "sellando" else None

        csv = (await eventually(sealing)).csv

    # Older than anything else in the test database, so a pass at this cut-off sees it alone.
    cutoff = datetime(2000, 1, 1, tzinfo=UTC)
    async with tenant_transaction(first.db, tenant) as session:
        await session.execute(
            update(emisiones)
            .where(emisiones.c.id == emision_id)
            .values(actualizado_en=cutoff - timedelta(days=1))
        )

    async with platform_of(quick, ["csv", "sellado", "repositorio"], blobs) as second:
        reconciler = second.runtimes["repositorio"].reconciler
        stalled_after = timedelta(seconds=settings.reconciler_stalled_after_seconds)
        assert await reconciler.run_once(now=cutoff + stalled_after) == 1

        async def issued() -> Any:
            row = await emision_row(second, tenant, emision_id)
            return row if row.estado == "emitida" else None

        done = await eventually(issued, timeout=30)
        assert done.csv == csv
        assert done.version_emitida == 2
        # Resumed with a renewed lease: a second pass finds nothing to do.
        assert await reconciler.run_once(now=cutoff + stalled_after) == 0
        async with asgi_client(second.apps["repositorio"]) as client:
            listed = await client.get(
                f"/api/v1/documentos/{documento['id']}/versiones", headers=bearer(user)
            )
            assert listed.status_code == 200, listed.text
            body: Any = listed.json()
            versions = body["items"] if isinstance(body, dict) else body
            # The original and the one issued version: the resumed saga stored one, not two.
            assert [v["version"] for v in versions] == [1, 2]
