"""The justificante of every asiento on real PostgreSQL and the in-process bus: the registro
asks the repositorio to issue it (the PDF and its ENI metadata on the command), records
what the repositorio answers (issued or failed), and answers GET .../justificante with
202 while pending, 303 to the public sealed PDF once issued, 409 when it failed; a failed
one can be asked for again. The repositorio's side is played here by publishing its
events; the whole chain is covered end to end in tests/e2e/test_documento_chain.py."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.bootstrap import Platform
from services.common.bus.envelope import EventName, ReceivedEvent, build_envelope
from services.common.bus.transport import OutgoingMessage
from services.common.db import asyncpg_url, tenant_transaction
from services.common.settings import Settings
from services.common.tenants import Tenant
from services.registro import handlers
from services.registro.asientos.schemas import AsientoRead
from services.registro.justificantes.domain import solicitud_id
from services.registro.justificantes.models import justificantes
from services.registro.justificantes.pdf import render_justificante
from tests.support import factories
from tests.support.platforms import (
    DirectDelivery,
    asgi_client,
    bearer,
    collect_events,
    running_platform,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

EMITIR = "repositorio.documento.emitir.v1"
EMITIDO = "repositorio.documento.emitido.v1"
FALLIDA = "repositorio.emision.fallida.v1"
TEST_DIR3 = "L01000000"  # what the new_tenant fixture gives every test tenant


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


auth = bearer


async def commands_to_repositorio(platform: Platform, tenant: str) -> list[ReceivedEvent]:
    """Listens, as the repositorio would, for the issuing commands of ``tenant``."""
    return await collect_events(platform.transport, f"{tenant}.{EMITIR}")


def envelope(platform: Platform, tenant: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    return build_envelope(
        EventName.parse(name),
        tenant=tenant,
        data=data,
        dataschema=platform.contracts.schema_uri(name),
    )


async def publish(platform: Platform, event: dict[str, Any]) -> None:
    name = str(EventName.from_type(event["type"]))
    await platform.transport.publish(
        OutgoingMessage(
            routing_key=f"{event['tenantid']}.{name}",
            body=json.dumps(event).encode(),
            message_id=event["id"],
        )
    )


def emitido(
    command: ReceivedEvent, *, csv: str = "ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"
) -> dict[str, Any]:
    """What the repositorio answers when it issued what ``command`` asked for."""
    data = command.data
    return {
        "documento_id": str(uuid.uuid4()),
        "version": 2,
        "csv": csv,
        "url_verificacion": f"https://sede.example.es/verificar/{csv}",
        "sha256": "ab" * 32,
        "tamano": 12345,
        "nombre_fichero": data["nombre_fichero"],
        "identificador": f"ES_{data['metadatos']['organo']}_2026_{uuid.uuid4().hex[:30].upper()}",
        "tipo_documental": data["metadatos"]["tipo_documental"],
        "organo": data["metadatos"]["organo"],
        "emitido_en": "2026-11-23T10:00:05+00:00",
        "firmante": "Sello de órgano de prueba",
        "sello_tiempo": "2026-11-23T10:00:04+00:00",
        "solicitud_id": data["solicitud_id"],
        "solicitante": data["solicitante"],
        "referencia": data["referencia"],
    }


async def register(client: httpx.AsyncClient, token: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/registro/asientos", json=factories.asiento(**overrides), headers=auth(token)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def justificante_of(client: httpx.AsyncClient, token: str, asiento_id: str) -> httpx.Response:
    return await client.get(
        f"/api/v1/registro/asientos/{asiento_id}/justificante", headers=auth(token)
    )


async def row_of(platform: Platform, tenant: str, asiento_id: str) -> Any:
    async with tenant_transaction(platform.db, tenant) as session:
        return (
            await session.execute(
                select(justificantes).where(justificantes.c.asiento_id == asiento_id)
            )
        ).first()


async def audit_actions(platform: Platform, tenant: str) -> list[str]:
    audit = platform.runtimes["registro"].tables.audit_log
    async with tenant_transaction(platform.db, tenant) as session:
        rows = await session.execute(
            select(audit.c.action).where(audit.c.entity == "justificante").order_by(audit.c.id)
        )
    return list(rows.scalars())


async def test_each_asiento_asks_the_repositorio_to_issue_its_justificante(
    platform, client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    commands = await commands_to_repositorio(platform, tenant)
    asiento = await register(
        client,
        token(tenant, "registro"),
        interesados=[factories.interesado(nombre="Núria", apellido1="Peñalver")],
    )
    await eventually(lambda: commands)
    command = commands[0]
    assert command.tenant == tenant
    assert command.subject == asiento["numero"]
    data = command.data
    assert data["solicitud_id"] == solicitud_id(asiento["id"])
    assert data["solicitante"] == "registro"
    assert data["nombre_fichero"] == f"justificante-{asiento['numero'].replace('/', '-')}.pdf"
    assert data["metadatos"] == {
        "organo": TEST_DIR3,
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD09",
    }
    assert data["referencia"] == {
        "tipo": "asiento",
        "id": asiento["id"],
        "numero": asiento["numero"],
    }
    pdf = base64.b64decode(data["pdf"])
    info = PdfFileReader(BytesIO(pdf)).trailer["/Info"]
    assert info["/Title"] == f"Justificante de registro {asiento['numero']}"
    # Exactly the receipt of this asiento from this entity (rendering is deterministic).
    entidad = Tenant(tenant, f"Ayuntamiento de prueba {tenant}", TEST_DIR3)
    assert pdf == render_justificante(AsientoRead.model_validate(asiento), entidad)

    pending = await justificante_of(client, token(tenant, "registro"), asiento["id"])
    assert pending.status_code == 202
    assert pending.headers["retry-after"] == "2"
    assert pending.json()["estado"] == "pendiente"
    assert pending.json()["status"] == 202
    row = await row_of(platform, tenant, asiento["id"])
    assert (row.estado, row.intento, row.solicitud_id) == ("pendiente", 1, data["solicitud_id"])


async def test_issued_justificante_answers_see_other_to_the_public_pdf(
    platform, client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    commands = await commands_to_repositorio(platform, tenant)
    asiento = await register(client, token(tenant, "registro"))
    await eventually(lambda: commands)
    issued = emitido(commands[0])
    await publish(platform, envelope(platform, tenant, EMITIDO, issued))

    async def answered() -> httpx.Response | None:
        response = await justificante_of(client, token(tenant, "registro"), asiento["id"])
        return response if response.status_code != 202 else None

    response = await eventually(answered)
    assert response.status_code == 303
    assert response.headers["location"] == f"/verificar/{issued['csv']}/documento"
    assert response.json() == {
        "estado": "emitido",
        "csv": issued["csv"],
        "url_verificacion": issued["url_verificacion"],
        "documento_id": issued["documento_id"],
        "version": 2,
    }
    assert await audit_actions(platform, tenant) == ["emitir-justificante"]


async def test_a_redelivered_answer_applies_once(platform, client, new_tenant, token) -> None:
    tenant = await new_tenant()
    commands = await commands_to_repositorio(platform, tenant)
    asiento = await register(client, token(tenant, "registro"))
    await eventually(lambda: commands)
    spec = next(s for s in handlers.consumers(None) if s.name == "emisiones")
    consumer = platform.runtimes["registro"].event_consumer(spec)
    first = envelope(platform, tenant, EMITIDO, emitido(commands[0]))
    for _ in range(2):  # the broker delivers the same message again
        delivery = DirectDelivery(first, EMITIDO)
        await consumer.on_delivery(delivery)
        assert delivery.acked
    # Another message about the same request (say, the repositorio replayed it) changes nothing.
    other = envelope(
        platform, tenant, EMITIDO, emitido(commands[0], csv="22222-33333-44444-55555-6666Z")
    )
    await consumer.on_delivery(DirectDelivery(other, EMITIDO))
    row = await row_of(platform, tenant, asiento["id"])
    assert (row.estado, row.csv, row.documento_id) == (
        "emitido",
        first["data"]["csv"],
        first["data"]["documento_id"],
    )
    assert await audit_actions(platform, tenant) == ["emitir-justificante"]


async def test_failed_issuing_is_a_conflict_and_can_be_asked_for_again(
    platform, client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    commands = await commands_to_repositorio(platform, tenant)
    asiento = await register(client, token(tenant, "registro"))
    await eventually(lambda: commands)
    too_early = await client.post(
        f"/api/v1/registro/asientos/{asiento['id']}/justificante/reintentar", headers=headers
    )
    assert too_early.status_code == 409

    first = commands[0].data
    fallida = {
        "solicitud_id": first["solicitud_id"],
        "solicitante": "registro",
        "motivo": "la entidad no tiene certificado de sello",
        "codigo": "sin-certificado",
    }
    await publish(platform, envelope(platform, tenant, FALLIDA, fallida))

    async def failed() -> httpx.Response | None:
        response = await justificante_of(client, token(tenant, "registro"), asiento["id"])
        return response if response.status_code != 202 else None

    response = await eventually(failed)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["estado"] == "fallido"
    assert problem["motivo"] == fallida["motivo"]
    assert problem["codigo"] == "sin-certificado"
    assert fallida["motivo"] in problem["detail"]

    retried = await client.post(
        f"/api/v1/registro/asientos/{asiento['id']}/justificante/reintentar", headers=headers
    )
    assert retried.status_code == 202, retried.text
    assert retried.headers["retry-after"] == "2"
    await eventually(lambda: len(commands) == 2)
    second = commands[1].data
    assert second["solicitud_id"] == solicitud_id(asiento["id"], 2) != first["solicitud_id"]
    assert second["pdf"] == first["pdf"]
    assert (
        await justificante_of(client, token(tenant, "registro"), asiento["id"])
    ).status_code == 202
    again = await client.post(
        f"/api/v1/registro/asientos/{asiento['id']}/justificante/reintentar", headers=headers
    )
    assert again.status_code == 409

    # A late answer to the failed request is not the justificante any more; the new one is.
    stale = envelope(platform, tenant, EMITIDO, emitido(commands[0]))
    spec = next(s for s in handlers.consumers(None) if s.name == "emisiones")
    consumer = platform.runtimes["registro"].event_consumer(spec)
    await consumer.on_delivery(DirectDelivery(stale, EMITIDO))
    assert (await row_of(platform, tenant, asiento["id"])).estado == "pendiente"
    issued = emitido(commands[1])
    await consumer.on_delivery(DirectDelivery(envelope(platform, tenant, EMITIDO, issued), EMITIDO))
    done = await justificante_of(client, token(tenant, "registro"), asiento["id"])
    assert done.status_code == 303
    assert done.json()["csv"] == issued["csv"]
    assert await audit_actions(platform, tenant) == [
        "fallar-justificante",
        "reintentar-justificante",
        "emitir-justificante",
    ]


async def test_another_tenants_justificante_is_404_and_its_answers_do_not_cross(
    platform, client, new_tenant, token
) -> None:
    a, b = await new_tenant(), await new_tenant()
    commands = await commands_to_repositorio(platform, a)
    asiento = await register(client, token(a, "registro"))
    await eventually(lambda: commands)
    for path in ("", "/reintentar"):
        url = f"/api/v1/registro/asientos/{asiento['id']}/justificante{path}"
        method = client.get if not path else client.post
        other = await method(url, headers=auth(token(b, "registro")))
        assert other.status_code == 404
        assert other.headers["content-type"].startswith("application/problem+json")
    for missing in (str(uuid.uuid4()), "no-es-un-uuid"):
        response = await justificante_of(client, token(a, "registro"), missing)
        assert response.status_code == 404
    no_role = await justificante_of(client, token(a, "tramitador"), asiento["id"])
    assert no_role.status_code == 403

    # B's bus messages cannot issue A's justificante, even naming its request.
    spec = next(s for s in handlers.consumers(None) if s.name == "emisiones")
    consumer = platform.runtimes["registro"].event_consumer(spec)
    await consumer.on_delivery(
        DirectDelivery(envelope(platform, b, EMITIDO, emitido(commands[0])), EMITIDO)
    )
    # Nor can an answer to a request the registro never made.
    forged = emitido(commands[0]) | {"solicitud_id": str(uuid.uuid4())}
    await consumer.on_delivery(DirectDelivery(envelope(platform, a, EMITIDO, forged), EMITIDO))
    assert (await justificante_of(client, token(a, "registro"), asiento["id"])).status_code == 202
    assert await audit_actions(platform, a) == []


async def test_justificantes_are_tenant_bound_and_asientos_stay_insert_only(
    settings: Settings,
) -> None:
    engine = create_async_engine(asyncpg_url(settings.database_url or ""))
    role = settings.database_app_role
    try:
        async with engine.connect() as conn:
            rls = (
                await conn.execute(
                    text(
                        "SELECT relrowsecurity FROM pg_class "
                        "WHERE oid = 'registro.justificantes'::regclass"
                    )
                )
            ).scalar_one()
            privileges = {
                (table, privilege): (
                    await conn.execute(
                        text("SELECT has_table_privilege(:role, :table, :privilege)"),
                        {"role": role, "table": f"registro.{table}", "privilege": privilege},
                    )
                ).scalar_one()
                for table in ("justificantes", "asientos", "audit_log")
                for privilege in ("INSERT", "UPDATE", "DELETE")
            }
    finally:
        await engine.dispose()
    assert rls is True
    assert privileges == {
        ("justificantes", "INSERT"): True,
        ("justificantes", "UPDATE"): True,
        ("justificantes", "DELETE"): False,
        ("asientos", "INSERT"): True,
        ("asientos", "UPDATE"): False,
        ("asientos", "DELETE"): False,
        ("audit_log", "INSERT"): True,
        ("audit_log", "UPDATE"): False,
        ("audit_log", "DELETE"): False,
    }


async def test_an_asiento_without_a_request_gets_its_first_one_on_demand(
    platform, client, new_tenant, token
) -> None:
    """Asientos registered before justificantes existed never saw the consumer."""
    tenant = await new_tenant()
    commands = await commands_to_repositorio(platform, tenant)
    asiento_id = str(uuid.uuid4())
    async with tenant_transaction(platform.db, tenant) as session:
        await session.execute(
            text(
                "INSERT INTO registro.asientos (id, tenant_id, tipo, anio, secuencia, numero, "
                "fecha_registro, resumen, unidad_destino, interesados, registrado_por) VALUES "
                "(:id, :t, 'salida', 2025, 9, 'S/2025/000009', '2025-12-31T23:30:00Z', "
                "'Notificación de resolución', 'L01000000', CAST(:i AS jsonb), 'maria')"
            ),
            {"id": asiento_id, "t": tenant, "i": json.dumps([factories.interesado()])},
        )
    headers = auth(token(tenant, "registro"))
    assert (await justificante_of(client, token(tenant, "registro"), asiento_id)).status_code == 202
    asked = await client.post(
        f"/api/v1/registro/asientos/{asiento_id}/justificante/reintentar", headers=headers
    )
    assert asked.status_code == 202, asked.text
    await eventually(lambda: commands)
    assert commands[0].data["solicitud_id"] == solicitud_id(asiento_id)
    assert commands[0].data["nombre_fichero"] == "justificante-S-2025-000009.pdf"
    row = await row_of(platform, tenant, asiento_id)
    assert (row.estado, row.intento) == ("pendiente", 1)
    assert await audit_actions(platform, tenant) == ["solicitar-justificante"]


async def test_the_queue_of_justificantes_shows_what_waits_and_since_when(
    platform, client, new_tenant, token
) -> None:
    tenant, other = await new_tenant(), await new_tenant()
    commands = await commands_to_repositorio(platform, tenant)
    for _ in range(2):
        await register(client, token(tenant, "registro"))
    await eventually(lambda: len(commands) == 2 or None)

    async def cola(who: str) -> dict[str, Any]:
        response = await client.get(
            "/api/v1/registro/justificantes/cola", headers=auth(token(who, "registro"))
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    waiting = await eventually(lambda: _when_pending(cola(tenant), 2))
    assert waiting["fallidos"] == 0
    assert waiting["mas_antiguo"] is not None
    assert waiting["antiguedad_segundos"] >= 0
    # Another entity's backlog is its own.
    assert (await cola(other))["pendientes"] == 0

    await publish(platform, envelope(platform, tenant, EMITIDO, emitido(commands[0])))
    after = await eventually(lambda: _when_pending(cola(tenant), 1))
    assert after["pendientes"] == 1

    refused = await client.get(
        "/api/v1/registro/justificantes/cola", headers=auth(token(tenant, "ciudadano"))
    )
    assert refused.status_code == 403


async def _when_pending(body: Any, count: int) -> dict[str, Any] | None:
    answered: dict[str, Any] = await body
    return answered if answered["pendientes"] == count else None
