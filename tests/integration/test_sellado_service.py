"""The sellado service wired as the platform wires it: seal over HTTP and by bus
command, each tenant with its own seal, verification, and the TSA route."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asn1crypto import tsp
from sqlalchemy import select

from services.bootstrap import Platform, build_platform
from services.common.bus.envelope import EventName, build_envelope
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.transport import OutgoingMessage
from services.common.db import tenant_transaction
from services.common.settings import Settings
from tests.support.pades_material import minimal_pdf
from tests.support.platforms import bearer, collect_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SELLAR = "sellado.documento.sellar.v1"


@pytest.fixture
async def sellado(settings: Settings) -> AsyncIterator[Platform]:
    platform = await build_platform(settings, ["sellado"], transport=InProcessTransport())
    await platform.runtimes["sellado"].start()
    yield platform
    await platform.close()


@pytest.fixture
async def client(sellado: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sellado.apps["sellado"])
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


async def verify(client: httpx.AsyncClient, token: str, pdf: bytes) -> list[dict[str, Any]]:
    response = await client.post(
        "/api/v1/sellado/verificaciones",
        files={"file": ("sellado.pdf", pdf, "application/pdf")},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    firmas: list[dict[str, Any]] = response.json()["firmas"]
    return firmas


async def test_seal_over_http_validates_and_names_the_council(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    response = await client.post(
        "/api/v1/sellado/sellos",
        files={"file": ("resolucion.pdf", minimal_pdf(), "application/pdf")},
        data={"motivo": "Resolución"},
        headers=bearer(token(tenant, "sellado")),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["repr-digest"].startswith("sha-256=:")
    firmas = await verify(client, token(tenant, "sellado"), response.content)
    assert len(firmas) == 1
    firma = firmas[0]
    assert firma["intact"] and firma["valid"] and firma["trusted"]
    assert firma["timestamp_valid"] is True
    assert f"Ayuntamiento de prueba {tenant}" in firma["signer"]
    assert firma["signer_ine"] == tenant


async def test_each_tenant_seals_only_with_its_own_key(client, new_tenant, token) -> None:
    a, b = await new_tenant(), await new_tenant()
    sealed = {}
    for tenant in (a, b):
        response = await client.post(
            "/api/v1/sellado/sellos",
            files={"file": ("x.pdf", minimal_pdf(), "application/pdf")},
            headers=bearer(token(tenant, "sellado")),
        )
        assert response.status_code == 200
        sealed[tenant] = (await verify(client, token(tenant, "sellado"), response.content))[0]
    assert sealed[a]["signer_ine"] == a
    assert sealed[b]["signer_ine"] == b
    assert sealed[a]["signer"] != sealed[b]["signer"]


async def test_seal_route_refuses_what_it_should(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    garbage = await client.post(
        "/api/v1/sellado/sellos",
        files={"file": ("x.pdf", b"not a pdf", "application/pdf")},
        headers=bearer(token(tenant, "sellado")),
    )
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["field"] == "file"
    no_role = await client.post(
        "/api/v1/sellado/sellos",
        files={"file": ("x.pdf", minimal_pdf(), "application/pdf")},
        headers=bearer(token(tenant, "registro")),
    )
    assert no_role.status_code == 403
    anonymous = await client.post(
        "/api/v1/sellado/sellos", files={"file": ("x.pdf", minimal_pdf(), "application/pdf")}
    )
    assert anonymous.status_code == 401


async def test_sealing_is_audited(client, sellado, new_tenant, token) -> None:
    tenant = await new_tenant()
    response = await client.post(
        "/api/v1/sellado/sellos",
        files={"file": ("acta.pdf", minimal_pdf(), "application/pdf")},
        headers=bearer(token(tenant, "sellado", sub="secretaria")),
    )
    runtime = sellado.runtimes["sellado"]
    async with tenant_transaction(runtime.db, tenant) as session:
        rows = (await session.execute(select(runtime.tables.audit_log))).all()
    assert [(r.actor, r.action) for r in rows] == [("secretaria", "sellar")]
    assert rows[0].new_values["nombre_fichero"] == "acta.pdf"
    digest = base64.b64decode(response.headers["repr-digest"].split(":")[1]).hex()
    assert rows[0].new_values["sha256_sellado"] == digest


async def test_tsa_route_answers_a_timestamp_reply(client) -> None:
    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": b"\x11" * 32,
            },
            "nonce": 12345,
            "cert_req": True,
        }
    ).dump()
    response = await client.post(
        "/api/v1/sellado/tsa",
        content=request,
        headers={"Content-Type": "application/timestamp-query"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    reply = tsp.TimeStampResp.load(response.content)
    assert reply["status"]["status"].native == "granted"
    chain = await client.get("/api/v1/sellado/tsa/chain.pem")
    assert chain.text.count("BEGIN CERTIFICATE") == 2


def command(tenant: str, pdf: bytes, **extra: Any) -> dict[str, Any]:
    return build_envelope(
        EventName.parse(SELLAR),
        tenant=tenant,
        data={
            "solicitud_id": str(uuid.uuid4()),
            "solicitante": "pruebas",
            "nombre_fichero": "resolucion.pdf",
            "pdf": base64.b64encode(pdf).decode(),
            **extra,
        },
        dataschema="https://consistorio.es/bus-contracts/sellado/documento-sellar/v1.json",
    )


async def _replies(platform: Platform, tenant: str) -> list[Any]:
    return await collect_events(
        platform.transport,
        f"{tenant}.sellado.documento.sellado.v1",
        f"{tenant}.sellado.documento.rechazado.v1",
    )


async def test_seal_command_replies_with_the_sealed_pdf(sellado, client, new_tenant, token) -> None:
    tenant = await new_tenant()
    replies = await _replies(sellado, tenant)
    request = command(tenant, minimal_pdf(), apariencia={"visible": True})
    await sellado.transport.publish(
        OutgoingMessage(
            routing_key=f"{tenant}.{SELLAR}",
            body=json.dumps(request).encode(),
            message_id=request["id"],
        )
    )
    await eventually(lambda: replies)
    reply = replies[0]
    assert str(reply.name) == "sellado.documento.sellado.v1"
    assert reply.data["solicitud_id"] == request["data"]["solicitud_id"]
    assert reply.data["perfil"] == "PAdES-B-T"
    sealed = base64.b64decode(reply.data["pdf"])
    firma = (await verify(client, token(tenant, "sellado"), sealed))[0]
    assert firma["intact"] and firma["trusted"] and firma["signer_ine"] == tenant


async def test_seal_command_with_garbage_is_refused_by_reply(sellado, new_tenant) -> None:
    tenant = await new_tenant()
    replies = await _replies(sellado, tenant)
    request = command(tenant, b"%PDF-1.7 but broken")
    await sellado.transport.publish(
        OutgoingMessage(
            routing_key=f"{tenant}.{SELLAR}",
            body=json.dumps(request).encode(),
            message_id=request["id"],
        )
    )
    await eventually(lambda: replies)
    assert str(replies[0].name) == "sellado.documento.rechazado.v1"
    assert replies[0].data["codigo"] == "pdf-no-valido"
    assert replies[0].data["solicitud_id"] == request["data"]["solicitud_id"]


async def test_verification_is_for_staff_and_rate_limited(
    sellado: Platform, client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    pdf = minimal_pdf()
    files = {"file": ("a.pdf", pdf, "application/pdf")}
    refused = await client.post(
        "/api/v1/sellado/verificaciones", files=files, headers=bearer(token(tenant, "ciudadano"))
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    allowance = sellado.runtimes["sellado"].settings.sellado_verificaciones_per_minute
    staff = bearer(token(tenant, "registro", sub="verificadora"))
    for _ in range(allowance):
        ok = await client.post("/api/v1/sellado/verificaciones", files=files, headers=staff)
        assert ok.status_code == 200, ok.text
    limited = await client.post("/api/v1/sellado/verificaciones", files=files, headers=staff)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0


async def test_verification_parses_off_the_event_loop(sellado: Platform, client, new_tenant, token):
    """While a large PDF is being parsed, the same loop keeps answering other requests."""
    tenant = await new_tenant()
    cpu = sellado.apps["sellado"].state.cpu
    junk = b"%PDF-1.7\n" + bytes(8 * 1024 * 1024)
    verifying = asyncio.create_task(
        client.post(
            "/api/v1/sellado/verificaciones",
            files={"file": ("ceros.pdf", junk, "application/pdf")},
            headers=bearer(token(tenant, "registro")),
        )
    )
    await eventually(lambda: cpu.running > 0 or verifying.done(), timeout=60)
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert not verifying.done(), "the verification should still be running in its worker"
    answer = await verifying
    assert answer.status_code == 422, answer.text


async def test_xml_command_refuses_what_is_not_xml_and_an_inactive_council(
    sellado, new_tenant
) -> None:
    """``sellado.xml.firmar.v1``: the happy path is the tramitador's índice (its own test);
    here, the refusals, each answered once by reply."""
    tenant, inactivo = await new_tenant(), await new_tenant(activo=False)
    for council, xml, codigo in (
        (tenant, b"<sin-cerrar>", "xml-no-valido"),
        (inactivo, b"<a/>", "sin-certificado"),
    ):
        replies = await collect_events(
            sellado.transport,
            f"{council}.sellado.xml.firmado.v1",
            f"{council}.sellado.xml.rechazado.v1",
        )
        request = build_envelope(
            EventName.parse("sellado.xml.firmar.v1"),
            tenant=council,
            data={
                "solicitud_id": str(uuid.uuid4()),
                "solicitante": "pruebas",
                "xml": base64.b64encode(xml).decode(),
            },
            dataschema="https://consistorio.es/bus-contracts/sellado/xml-firmar/v1.json",
        )
        await sellado.transport.publish(
            OutgoingMessage(
                routing_key=f"{council}.sellado.xml.firmar.v1",
                body=json.dumps(request).encode(),
                message_id=request["id"],
            )
        )
        await eventually(lambda replies=replies: replies)
        assert str(replies[0].name) == "sellado.xml.rechazado.v1"
        assert replies[0].data["codigo"] == codigo
        assert replies[0].data["solicitud_id"] == request["data"]["solicitud_id"]
