"""Admission control on real PostgreSQL: more registrations than the bounds allow are
answered 201 or 503 with Retry-After, nothing refused leaves a row, every refused one
completes on retry with its Idempotency-Key, and one council's burst does not get
another council refused."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.bootstrap import Platform, build_platform
from services.common.db import asyncpg_url
from services.common.settings import Settings
from tests.deploy.test_metrics import samples, value
from tests.support import factories
from tests.support.broker import delete_run
from tests.support.platforms import asgi_client, bearer, running_platform
from tests.support.servers import AMQP_URL, require_server
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ASIENTOS = "/api/v1/registro/asientos"
RETRY_DEADLINE_SECONDS = 60.0


@pytest.fixture
def tight(settings: Settings) -> Settings:
    """Bounds far below the burst the tests send, so refusals are certain."""
    return settings.model_copy(
        update={"admission_max_in_flight": 6, "admission_max_in_flight_per_tenant": 3}
    )


@asynccontextmanager
async def _on_rabbitmq(settings: Settings, services: list[str]) -> AsyncIterator[Platform]:
    """The services with their bus on RabbitMQ (a private exchange and queues)."""
    require_server("RabbitMQ", "127.0.0.1", 5672)
    run = uuid.uuid4().hex[:8]
    exchange, prefix = f"consistorio.admission.{run}", f"admission.{run}."
    on_broker = settings.model_copy(
        update={"amqp_url": AMQP_URL, "bus_exchange": exchange, "bus_queue_prefix": prefix}
    )
    platform = await build_platform(on_broker, services)
    await platform.start()
    try:
        yield platform
    finally:
        await platform.close()
        await delete_run(AMQP_URL, queue_prefix=prefix, exchange=exchange)


@pytest.fixture(params=["inprocess", "rabbitmq"])
def platform_on(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Starts the services on the bus under test."""
    return running_platform if request.param == "inprocess" else _on_rabbitmq


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[Any]:
    """The database as its owner (row-level security does not apply): the test's eye."""
    engine = create_async_engine(asyncpg_url(database_url))
    yield engine
    await engine.dispose()


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503


_BODIES: dict[str, dict[str, Any]] = {}


async def _post(client: httpx.AsyncClient, headers: dict[str, str], key: str) -> httpx.Response:
    """Registers with ``key``; a retry of a key sends the same body, as a client would."""
    body = _BODIES.setdefault(key, factories.asiento())
    return await client.post(ASIENTOS, json=body, headers={**headers, "Idempotency-Key": key})


async def _rows(owner: Any, tenant: str) -> tuple[set[str], set[str]]:
    """The tenant's asiento ids and stored idempotency keys."""
    async with owner.connect() as conn:
        ids = {
            str(row[0])
            for row in await conn.execute(
                text("SELECT id FROM registro.asientos WHERE tenant_id = :t"), {"t": tenant}
            )
        }
        keys = {
            row[0]
            for row in await conn.execute(
                text("SELECT key FROM registro.idempotency_keys WHERE tenant_id = :t"),
                {"t": tenant},
            )
        }
    return ids, keys


async def test_a_burst_over_the_bounds_is_201_or_503_and_retries_complete_it(
    tight: Settings,
    new_tenant: Callable[..., Any],
    token: Callable[..., str],
    owner: Any,
    platform_on: Callable[..., Any],
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro"))
    keys = [str(uuid.uuid4()) for _ in range(30)]
    async with (
        platform_on(tight, ["registro"]) as platform,
        asgi_client(platform.apps["registro"]) as client,
    ):
        answers = await asyncio.gather(*(_post(client, headers, key) for key in keys))
        created: dict[str, str] = {}
        secuencias: dict[str, int] = {}
        refused: list[str] = []
        for key, answer in zip(keys, answers, strict=True):
            if answer.status_code == 201:
                created[key] = answer.json()["id"]
                secuencias[key] = answer.json()["secuencia"]
            else:
                _assert_refused(answer)
                refused.append(key)
        assert refused, "the burst never reached the bound: the test proves nothing"
        assert created, "nothing was admitted"

        ids, stored = await _rows(owner, tenant)
        # Every 201 is in the register, and no refused request left a row or a key.
        assert ids == set(created.values())
        assert stored == set(created)

        deadline = time.monotonic() + RETRY_DEADLINE_SECONDS
        while refused and time.monotonic() < deadline:
            again = await asyncio.gather(*(_post(client, headers, key) for key in refused))
            waits = []
            for key, answer in zip(list(refused), again, strict=True):
                if answer.status_code == 201:
                    created[key] = answer.json()["id"]
                    secuencias[key] = answer.json()["secuencia"]
                    refused.remove(key)
                else:
                    _assert_refused(answer)
                    waits.append(int(answer.headers["retry-after"]))
            if refused:
                # The client honours Retry-After (not a wait for something to happen).
                await asyncio.sleep(min(waits))
        assert not refused, f"{len(refused)} still refused after {RETRY_DEADLINE_SECONDS} s"

        ids, stored = await _rows(owner, tenant)
        assert ids == set(created.values()) and len(ids) == len(keys)
        assert stored == set(keys)
        # A replay of a completed key answers the same asiento, creating nothing.
        replay = await _post(client, headers, keys[0])
        assert replay.status_code == 201 and replay.json()["id"] == created[keys[0]]
        assert len((await _rows(owner, tenant))[0]) == len(keys)
        # Refusals took no number: the series has no gap.
        numbers = sorted(secuencias.values())
        assert numbers == list(range(1, len(keys) + 1))


async def test_one_tenant_at_its_bound_does_not_get_another_refused(
    tight: Settings, new_tenant: Callable[..., Any], token: Callable[..., str], owner: Any
) -> None:
    busy, other = await new_tenant(), await new_tenant()
    busy_headers = bearer(token(busy, "registro"))
    other_headers = bearer(token(other, "registro"))
    async with running_platform(tight, ["registro"]) as platform:
        admission = platform.apps["registro"].state.admission
        async with asgi_client(platform.apps["registro"]) as client:
            first = await _post(client, busy_headers, str(uuid.uuid4()))
            assert first.status_code == 201, first.text
            # Hold the busy council's number series: its next registrations wait there.
            async with owner.connect() as conn, conn.begin():
                await conn.execute(
                    text("SELECT * FROM registro.counters WHERE tenant_id = :t FOR UPDATE"),
                    {"t": busy},
                )
                held = [
                    asyncio.create_task(_post(client, busy_headers, str(uuid.uuid4())))
                    for _ in range(tight.admission_max_in_flight_per_tenant)
                ]
                await eventually(
                    lambda: (
                        admission.per_tenant.get(busy, 0)
                        == tight.admission_max_in_flight_per_tenant
                    )
                )
                over = await _post(client, busy_headers, str(uuid.uuid4()))
                _assert_refused(over)
                assert over.json()["reason"] == "tenant_busy"
                # The other council still has the rest of the service.
                for _ in range(
                    tight.admission_max_in_flight - tight.admission_max_in_flight_per_tenant
                ):
                    served = await _post(client, other_headers, str(uuid.uuid4()))
                    assert served.status_code == 201, served.text
                assert not any(task.done() for task in held)
            finished = await asyncio.gather(*held)
            assert [answer.status_code for answer in finished] == [201] * len(held)
            # Overload is visible: the refusal by reason, the requests in flight, pool waits.
            scraped = samples((await client.get("/metrics")).text)
            refused = value(
                scraped, "consistorio_http_refused_total", service="registro", reason="tenant_busy"
            )
            assert refused >= 1
            assert value(scraped, "consistorio_http_in_flight", service="registro") == 0
            waits = value(scraped, "consistorio_db_pool_wait_seconds_count", pool="requests")
            assert waits > 0
