"""``/metrics`` in Prometheus format: scraped and parsed, on real PostgreSQL.

Registering an asiento must show up as a latency sample under its route template,
its justificante as pending, the consumer's lag as observed; a broken message as a
dead letter of its consumer; the gateway has its own latency histogram.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_gateway
from services.common.bus.transport import OutgoingMessage
from services.common.settings import Settings
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a scrape; fails on anything that is not the text format."""
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(scraped: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    found = [v for n, ls, v in scraped if n == name and labels.items() <= ls.items()]
    assert found, f"{name} {labels} not in the scrape"
    return sum(found)


async def test_service_metrics_follow_requests_outbox_consumers_and_dead_letters(
    settings: Settings, new_tenant: Callable[..., Any], token: Callable[..., str]
) -> None:
    tenant = await new_tenant()
    async with (
        running_platform(settings, ["registro"]) as platform,
        asgi_client(platform.apps["registro"]) as client,
    ):

        async def scrape() -> list[tuple[str, dict[str, str], float]]:
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            return samples(response.text)

        before = await scrape()
        assert value(before, "consistorio_outbox_pending", service="registro") >= 0
        created = await client.post(
            "/api/v1/registro/asientos",
            json=factories.asiento(),
            headers=bearer(token(tenant, "registro")),
        )
        assert created.status_code == 201, created.text

        async def justificante_pending() -> Any:
            scraped = await scrape()
            pending = value(scraped, "consistorio_registro_justificantes_pendientes")
            return scraped if pending >= 1 else None

        scraped = await eventually(justificante_pending)
        assert (
            value(
                scraped,
                "consistorio_http_request_duration_seconds_count",
                service="registro",
                method="POST",
                route="/api/v1/registro/asientos",
                status="201",
            )
            >= 1
        )
        assert (
            value(
                scraped,
                "consistorio_consumer_lag_seconds_count",
                service="registro",
                consumer="justificantes",
            )
            >= 1
        )
        assert value(scraped, "consistorio_outbox_oldest_pending_age_seconds") >= 0
        # The document workers' backlog (the justificante was rendered there: none left).
        assert value(scraped, "consistorio_document_jobs") == 0

        # A message that breaks its contract is dead-lettered: the gauge names its consumer.
        await platform.transport.publish(
            OutgoingMessage(
                routing_key=f"{tenant}.registro.asiento.registrado.v1",
                body=b'{"not": "a cloudevent"}',
                message_id=str(uuid.uuid4()),
            )
        )

        async def dead_lettered() -> Any:
            scraped = await scrape()
            found = [
                ls["consumer"] for n, ls, v in scraped if n == "consistorio_dead_letters" and v >= 1
            ]
            return found

        consumers = await eventually(dead_lettered)
        assert any("justificantes" in c for c in consumers), consumers


async def test_the_repositorio_shows_its_emisiones_in_progress_by_stage(
    settings: Settings,
) -> None:
    async with (
        running_platform(settings, ["repositorio"]) as platform,
        asgi_client(platform.apps["repositorio"]) as client,
    ):
        response = await client.get("/metrics")
        assert response.status_code == 200
        scraped = samples(response.text)
        for estado in ("pendiente", "sellando"):
            assert value(scraped, "consistorio_repositorio_emisiones_en_curso", estado=estado) >= 0
        assert value(scraped, "consistorio_repositorio_emision_oldest_age_seconds") >= 0
        assert value(scraped, "consistorio_document_jobs") == 0


async def test_gateway_exposes_its_latency_histogram(settings: Settings) -> None:
    async with running_platform(settings, []) as platform:
        gateway = create_gateway(
            settings=settings, verifier=platform.verifier, service_urls={}, public_paths=[]
        )
        async with asgi_client(gateway) as client:
            assert (await client.get("/healthz")).status_code == 200
            scraped = samples((await client.get("/metrics")).text)
    assert (
        value(
            scraped,
            "consistorio_http_request_duration_seconds_count",
            service="gateway",
            route="/healthz",
            status="200",
        )
        >= 1
    )
