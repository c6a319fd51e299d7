"""Annulment of asientos on real PostgreSQL and the in-process bus: the asiento stays in
the book with its number, marked annulled (who, when, why), in an insert-only table;
twice is a 409, another entity's is a 404; it is audited and announced on the bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from services.bootstrap import Platform
from services.common.bus.envelope import ReceivedEvent
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.registro.asientos.models import anulaciones
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, collect_events, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ANULADO = "registro.asiento.anulado.v1"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


auth = bearer


async def listen(platform: Platform, tenant: str) -> list[ReceivedEvent]:
    """Collects, as a backoffice would, the annulments of ``tenant``."""
    return await collect_events(platform.transport, f"{tenant}.{ANULADO}")


async def registrar(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    response = await client.post(
        "/api/v1/registro/asientos", json=factories.asiento(**fields), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_annulling_marks_the_asiento_and_keeps_its_number(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro", sub="pepe"))
    events = await listen(platform, tenant)
    asiento = await registrar(client, headers, tipo="salida")
    assert asiento["estado"] == "registrado" and asiento["anulacion"] is None

    response = await client.post(
        f"/api/v1/registro/asientos/{asiento['id']}/anular",
        json={"motivo": "  Registrado por duplicado "},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["estado"] == "anulado"
    assert body["anulacion"]["motivo"] == "Registrado por duplicado"
    assert body["anulacion"]["anulado_por"] == "pepe"
    assert body["anulacion"]["anulado_en"]
    # Everything else is the asiento as it was registered.
    assert {k: v for k, v in body.items() if k not in ("estado", "anulacion")} == {
        k: v for k, v in asiento.items() if k not in ("estado", "anulacion")
    }
    got = await client.get(f"/api/v1/registro/asientos/{asiento['id']}", headers=headers)
    assert got.json() == body

    # The number is never given again: the next salida takes the following one.
    siguiente = await registrar(client, headers, tipo="salida")
    assert siguiente["secuencia"] == asiento["secuencia"] + 1
    assert siguiente["numero"] != asiento["numero"]

    await eventually(lambda: _received(events, 1))
    event = events[0]
    assert event.subject == asiento["numero"]
    assert event.data == {
        "asiento_id": asiento["id"],
        "numero": asiento["numero"],
        "tipo": "salida",
        "anio": asiento["anio"],
        "secuencia": asiento["secuencia"],
        "motivo": "Registrado por duplicado",
        "anulado_por": "pepe",
        "anulado_en": body["anulacion"]["anulado_en"],
    }


async def _received(events: list[ReceivedEvent], count: int) -> bool:
    return len(events) >= count


async def test_annulling_twice_is_a_409_and_concurrent_ones_annul_once(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    asiento = await registrar(client, headers)
    url = f"/api/v1/registro/asientos/{asiento['id']}/anular"
    first, second = await asyncio.gather(
        client.post(url, json={"motivo": "uno"}, headers=headers),
        client.post(url, json={"motivo": "dos"}, headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    again = await client.post(url, json={"motivo": "tres"}, headers=headers)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert asiento["numero"] in again.json()["detail"]
    runtime = platform.runtimes["registro"]
    async with tenant_transaction(runtime.db, tenant) as session:
        rows = (await session.execute(select(anulaciones))).all()
    assert len(rows) == 1
    winner = first if first.status_code == 200 else second
    assert rows[0].motivo == winner.json()["anulacion"]["motivo"]


async def test_idempotency_key_replays_the_annulment(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    asiento = await registrar(client, headers)
    url = f"/api/v1/registro/asientos/{asiento['id']}/anular"
    keyed = {**headers, "Idempotency-Key": "anular-1"}
    first = await client.post(url, json={"motivo": "error"}, headers=keyed)
    replay = await client.post(url, json={"motivo": "error"}, headers=keyed)
    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first.json()
    other = await client.post(url, json={"motivo": "otro"}, headers=keyed)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_another_tenants_asiento_is_404_and_bad_input_422(client, new_tenant, token) -> None:
    a, b = await new_tenant(), await new_tenant()
    asiento = await registrar(client, auth(token(a, "registro")))
    url = f"/api/v1/registro/asientos/{asiento['id']}/anular"
    other = await client.post(url, json={"motivo": "ajeno"}, headers=auth(token(b, "registro")))
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")
    missing = await client.post(
        f"/api/v1/registro/asientos/{uuid.uuid4()}/anular",
        json={"motivo": "x"},
        headers=auth(token(a, "registro")),
    )
    assert missing.status_code == 404
    for motivo in ("", "   ", "x" * 501):
        bad = await client.post(url, json={"motivo": motivo}, headers=auth(token(a, "registro")))
        assert bad.status_code == 422, motivo
        assert [e["field"] for e in bad.json()["errors"]] == ["motivo"]
    forbidden = await client.post(url, json={"motivo": "x"}, headers=auth(token(a, "tramitador")))
    assert forbidden.status_code == 403
    still = await client.get(
        f"/api/v1/registro/asientos/{asiento['id']}", headers=auth(token(a, "registro"))
    )
    assert still.json()["estado"] == "registrado"


async def test_annulment_is_audited(client, platform, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = {**auth(token(tenant, "registro", sub="luisa")), "X-Request-ID": "req-anular"}
    asiento = await registrar(client, headers)
    await client.post(
        f"/api/v1/registro/asientos/{asiento['id']}/anular",
        json={"motivo": "Presentado en otra entidad"},
        headers=headers,
    )
    runtime = platform.runtimes["registro"]
    audit = runtime.tables.audit_log
    async with tenant_transaction(runtime.db, tenant) as session:
        rows = (await session.execute(select(audit).where(audit.c.action == "anular"))).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor, row.entity, row.entity_id, row.request_id) == (
        "luisa",
        "asiento",
        asiento["id"],
        "req-anular",
    )
    assert row.old_values["estado"] == "registrado"
    assert row.new_values["estado"] == "anulado"
    assert row.new_values["anulacion"]["motivo"] == "Presentado en otra entidad"


async def test_the_service_role_can_neither_edit_asientos_nor_annulments(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    asiento = await registrar(client, headers)
    await client.post(
        f"/api/v1/registro/asientos/{asiento['id']}/anular", json={"motivo": "x"}, headers=headers
    )
    runtime = platform.runtimes["registro"]
    for statement in (
        "UPDATE registro.asientos SET resumen = 'cambiado'",
        "DELETE FROM registro.asientos",
        "UPDATE registro.anulaciones SET motivo = 'cambiado'",
        "DELETE FROM registro.anulaciones",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with tenant_transaction(runtime.db, tenant) as session:
                await session.execute(text(statement))
