"""The first slice on real PostgreSQL with the in-process bus: registro → tramitador,
numbering under concurrency, validation, auth, tenant isolation, idempotency, audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from tests.support import factories
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def clients(inprocess_platform: Platform) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """One ASGI client per service app (runtimes already started by the fixture)."""
    out = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")
        for name, app in inprocess_platform.apps.items()
    }
    yield out
    for client in out.values():
        await client.aclose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_answers_the_asiento_with_its_number(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    response = await clients["registro"].post(
        "/api/v1/registro/asientos",
        json=factories.asiento(tipo="salida"),
        headers=auth(token(tenant, "registro")),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["secuencia"] == 1
    assert body["numero"] == f"S/{body['anio']}/000001"
    assert response.headers["location"] == f"/api/v1/registro/asientos/{body['id']}"
    got = await clients["registro"].get(
        f"/api/v1/registro/asientos/{body['id']}", headers=auth(token(tenant, "registro"))
    )
    assert got.status_code == 200
    assert got.json() == body


async def test_fifty_concurrent_registrations_number_one_to_fifty(
    clients, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    responses = await asyncio.gather(
        *(
            clients["registro"].post(
                "/api/v1/registro/asientos", json=factories.asiento(), headers=headers
            )
            for _ in range(50)
        )
    )
    assert [r.status_code for r in responses] == [201] * 50
    assert sorted(r.json()["secuencia"] for r in responses) == list(range(1, 51))
    assert len({r.json()["numero"] for r in responses}) == 50
    listed = await clients["registro"].get(
        "/api/v1/registro/asientos", params={"size": 10, "page": 2}, headers=headers
    )
    assert listed.json()["total"] == 50
    assert len(listed.json()["items"]) == 10


async def test_entrada_and_salida_books_number_independently(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    post = clients["registro"].post
    e1 = await post(
        "/api/v1/registro/asientos", json=factories.asiento(tipo="entrada"), headers=headers
    )
    s1 = await post(
        "/api/v1/registro/asientos", json=factories.asiento(tipo="salida"), headers=headers
    )
    e2 = await post(
        "/api/v1/registro/asientos", json=factories.asiento(tipo="entrada"), headers=headers
    )
    assert (e1.json()["secuencia"], s1.json()["secuencia"], e2.json()["secuencia"]) == (1, 1, 2)


async def test_wrong_check_letter_is_a_422_naming_the_field(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    bad = factories.interesado(identificador=factories.wrong_letter(factories.nif()))
    response = await clients["registro"].post(
        "/api/v1/registro/asientos",
        json=factories.asiento(interesados=[factories.interesado(), bad]),
        headers=auth(token(tenant, "registro")),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["interesados[1].identificador"]
    assert "control" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("unidad_destino", "no-es-dir3", "unidad_destino"),
        ("tipo", "lateral", "tipo"),
        ("interesados", [], "interesados"),
        ("resumen", "x" * 241, "resumen"),
    ],
)
async def test_invalid_fields_are_named(clients, new_tenant, token, field, value, expected) -> None:
    tenant = await new_tenant()
    response = await clients["registro"].post(
        "/api/v1/registro/asientos",
        json=factories.asiento(**{field: value}),
        headers=auth(token(tenant, "registro")),
    )
    assert response.status_code == 422
    assert expected in [e["field"] for e in response.json()["errors"]]


async def test_nie_and_cif_are_validated_too(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    good = factories.asiento(
        interesados=[
            factories.interesado(tipo_identificador="NIE", identificador=factories.nie()),
            factories.interesado(tipo_identificador="CIF", identificador="B12345674"),
        ]
    )
    assert (
        await clients["registro"].post("/api/v1/registro/asientos", json=good, headers=headers)
    ).status_code == 201
    bad = factories.asiento(
        interesados=[factories.interesado(tipo_identificador="CIF", identificador="B12345675")]
    )
    response = await clients["registro"].post(
        "/api/v1/registro/asientos", json=bad, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "interesados[0].identificador"


async def test_auth_401_403_and_unknown_tenant(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    post = clients["registro"].post
    body = factories.asiento()
    missing = await post("/api/v1/registro/asientos", json=body)
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    garbage = await post("/api/v1/registro/asientos", json=body, headers=auth("not.a.jwt"))
    assert garbage.status_code == 401
    no_role = await post(
        "/api/v1/registro/asientos", json=body, headers=auth(token(tenant, "tramitador"))
    )
    assert no_role.status_code == 403
    unknown = await post(
        "/api/v1/registro/asientos", json=body, headers=auth(token("99999", "registro"))
    )
    assert unknown.status_code == 401
    assert "99999" in unknown.json()["detail"]
    disabled = await new_tenant(activo=False)
    refused = await post(
        "/api/v1/registro/asientos", json=body, headers=auth(token(disabled, "registro"))
    )
    assert refused.status_code == 401


async def test_another_tenants_asiento_is_404(clients, new_tenant, token) -> None:
    a, b = await new_tenant(), await new_tenant()
    created = await clients["registro"].post(
        "/api/v1/registro/asientos", json=factories.asiento(), headers=auth(token(a, "registro"))
    )
    asiento_id = created.json()["id"]
    other = await clients["registro"].get(
        f"/api/v1/registro/asientos/{asiento_id}", headers=auth(token(b, "registro"))
    )
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")
    listed = await clients["registro"].get(
        "/api/v1/registro/asientos", headers=auth(token(b, "registro"))
    )
    assert listed.json()["total"] == 0


async def test_idempotency_key_replays_the_first_answer(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = {**auth(token(tenant, "registro")), "Idempotency-Key": "retry-1"}
    body = factories.asiento()
    first, second = await asyncio.gather(
        clients["registro"].post("/api/v1/registro/asientos", json=body, headers=headers),
        clients["registro"].post("/api/v1/registro/asientos", json=body, headers=headers),
    )
    assert {first.status_code, second.status_code} == {201}
    assert first.json() == second.json()
    replayed = [r.headers.get("idempotent-replayed") for r in (first, second)]
    assert sorted(replayed, key=str) == ["true", None] or sorted(replayed, key=str) == [
        None,
        "true",
    ]
    third = await clients["registro"].post("/api/v1/registro/asientos", json=body, headers=headers)
    assert third.json()["id"] == first.json()["id"]
    listed = await clients["registro"].get(
        "/api/v1/registro/asientos", headers=auth(token(tenant, "registro"))
    )
    assert listed.json()["total"] == 1
    other_body = await clients["registro"].post(
        "/api/v1/registro/asientos", json=factories.asiento(resumen="otra cosa"), headers=headers
    )
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_registering_writes_an_audit_record(
    clients, inprocess_platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    created = await clients["registro"].post(
        "/api/v1/registro/asientos",
        json=factories.asiento(),
        headers={**auth(token(tenant, "registro", sub="pepe")), "X-Request-ID": "req-42"},
    )
    runtime = inprocess_platform.runtimes["registro"]
    audit = runtime.tables.audit_log
    async with tenant_transaction(runtime.db, tenant) as session:
        rows = (await session.execute(select(audit))).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor, row.action, row.entity, row.entity_id) == (
        "pepe",
        "registrar",
        "asiento",
        created.json()["id"],
    )
    assert row.new_values["numero"] == created.json()["numero"]
    assert row.request_id == "req-42"
    assert row.at is not None


async def test_asiento_opens_an_expediente_through_the_bus(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    created = await clients["registro"].post(
        "/api/v1/registro/asientos",
        json=factories.asiento(),
        headers=auth(token(tenant, "registro")),
    )
    asiento = created.json()
    headers = auth(token(tenant, "tramitador"))

    async def found() -> list[dict[str, Any]]:
        r = await clients["tramitador"].get(
            "/api/v1/tramitador/expedientes", params={"asiento_id": asiento["id"]}, headers=headers
        )
        return r.json()["items"]

    items = await eventually(found)
    assert len(items) == 1
    expediente = items[0]
    assert expediente["estado"] == "iniciado"
    assert expediente["numero"] == f"EXP/{asiento['anio']}/000001"
    assert expediente["asiento_numero"] == asiento["numero"]
    assert (
        expediente["interesados"][0]["identificador"] == asiento["interesados"][0]["identificador"]
    )
    one = await clients["tramitador"].get(
        f"/api/v1/tramitador/expedientes/{expediente['id']}", headers=headers
    )
    assert {k: one.json()[k] for k in expediente} == expediente


async def test_salida_or_unknown_procedimiento_opens_nothing(
    clients, inprocess_platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    for body in (
        factories.asiento(tipo="salida"),
        factories.asiento(procedimiento="no-existe"),
        factories.asiento(procedimiento=None),
    ):
        assert (
            await clients["registro"].post("/api/v1/registro/asientos", json=body, headers=headers)
        ).status_code == 201
    # A marker asiento that does open one proves the three before were processed.
    marker = await clients["registro"].post(
        "/api/v1/registro/asientos", json=factories.asiento(), headers=headers
    )
    theirs = auth(token(tenant, "tramitador"))

    async def listed() -> list[dict[str, Any]]:
        r = await clients["tramitador"].get("/api/v1/tramitador/expedientes", headers=theirs)
        return r.json()["items"]

    items = await eventually(listed)
    runtime = inprocess_platform.runtimes["tramitador"]
    async with tenant_transaction(runtime.db, tenant) as session:
        seen = (await session.execute(select(runtime.tables.inbox))).all()
    assert len(seen) >= 1
    await eventually(lambda: _inbox_count(runtime, tenant, 4))
    items = (
        await clients["tramitador"].get("/api/v1/tramitador/expedientes", headers=theirs)
    ).json()["items"]
    assert [i["asiento_id"] for i in items] == [marker.json()["id"]]


async def _inbox_count(runtime, tenant: str, expected: int) -> bool:
    async with tenant_transaction(runtime.db, tenant) as session:
        rows = (await session.execute(select(runtime.tables.inbox))).all()
    return len(rows) >= expected


async def test_catalogue_holds_the_generic_procedure(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    response = await clients["tramitador"].get(
        "/api/v1/tramitador/procedimientos", headers=auth(token(tenant))
    )
    assert response.status_code == 200
    generico = {p["codigo"]: p for p in response.json()["items"]}["generico"]
    assert "39/2015" in generico["normativa"][0]


async def test_the_event_and_the_audit_carry_the_number_the_asiento_got(
    clients, inprocess_platform, new_tenant, token
) -> None:
    """The number is taken in the statement that writes the event and the audit entry:
    both carry it (data, subject, snapshot), not the stand-in they were built with."""
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    created = []
    for _ in range(3):
        response = await clients["registro"].post(
            "/api/v1/registro/asientos", json=factories.asiento(tipo="salida"), headers=headers
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    runtime = inprocess_platform.runtimes["registro"]
    outbox, audit = runtime.tables.outbox, runtime.tables.audit_log
    async with tenant_transaction(runtime.db, tenant) as session:
        envelopes = (
            await session.scalars(
                select(outbox.c.envelope)
                .where(outbox.c.tenant_id == tenant)
                .where(outbox.c.routing_key.like("%.asiento.registrado.%"))
            )
        ).all()
        snapshots = (
            await session.scalars(
                select(audit.c.new_values).where(
                    audit.c.entity == "asiento", audit.c.action == "registrar"
                )
            )
        ).all()

    by_id = {e["data"]["asiento_id"]: e for e in envelopes}
    assert [body["secuencia"] for body in created] == [1, 2, 3]
    for body in created:
        envelope = by_id[body["id"]]
        assert envelope["subject"] == body["numero"]
        assert envelope["data"]["numero"] == body["numero"]
        assert envelope["data"]["secuencia"] == body["secuencia"]
        inprocess_platform.contracts.validate("registro.asiento.registrado.v1", envelope["data"])
    assert sorted((s["numero"], s["secuencia"]) for s in snapshots) == sorted(
        (b["numero"], b["secuencia"]) for b in created
    )
