"""Overload answers honestly: an exhausted request pool is a fast 503 with Retry-After,
and background work (outbox relay, bus consumers) has a pool of its own."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from services.common.settings import Settings
from tests.support.platforms import asgi_client, bearer, running_platform

pytestmark = pytest.mark.integration


async def test_exhausted_request_pool_is_a_503_and_workers_keep_their_pool(
    settings: Settings, new_tenant: Callable[..., object], token: Callable[..., str]
) -> None:
    tenant = await new_tenant()
    tight = settings.model_copy(
        update={"database_pool_size": 1, "database_pool_timeout_seconds": 0.2}
    )
    async with running_platform(tight, ["tramitador"]) as platform:
        runtime = platform.runtimes["tramitador"]
        assert runtime.workers_db is not runtime.db
        headers = bearer(token(tenant, "tramitador"))
        async with asgi_client(platform.apps["tramitador"]) as client:
            before = await client.get("/api/v1/tramitador/expedientes", headers=headers)
            assert before.status_code == 200, before.text
            # Hold the whole request pool (one connection plus one of overflow).
            async with platform.db.engine.connect() as a, platform.db.engine.connect() as b:
                await a.execute(text("SELECT 1"))
                await b.execute(text("SELECT 1"))
                answer = await client.get("/api/v1/tramitador/expedientes", headers=headers)
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert int(answer.headers["retry-after"]) > 0
                async with runtime.workers_db.engine.connect() as worker:
                    assert (await worker.execute(text("SELECT 1"))).scalar() == 1
            after = await client.get("/api/v1/tramitador/expedientes", headers=headers)
            assert after.status_code == 200, after.text
