"""The catalogue of procedures on real PostgreSQL: every council is seeded with the
platform's definitions, imports YAML validated by the package's JSON Schema, publishes
immutable versions, and its expedientes keep the version they started with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.bootstrap import Platform
from services.common.db import Database, tenant_transaction
from services.common.settings import Settings
from services.tramitador.procedimientos.domain import definiciones_incluidas
from tests.support.platforms import asgi_client, bearer, running_platform

pytestmark = pytest.mark.integration

BASE = "/api/v1/tramitador/procedimientos"
SEEDED = {
    "generico",
    "acometida-agua",
    "cambio-titular-licencia-apertura",
    "certificado-urbanistico",
    "concesion-subvencion",
    "contrato-negociado",
    "expediente-sancionador",
    "licencia-actividad-clasificada",
    "licencia-actividad-no-clasificada",
    "licencia-vado",
    "obras-menores",
    "reclamacion-tributos",
    "quejas-sugerencias",
    "tarjeta-estacionamiento-discapacidad",
    "cedula-habitabilidad",
    "cita-previa-tecnicos",
    "compra-menor",
    "proceso-selectivo",
    "bonificaciones",
    "ocupacion-via-publica",
}
INTERESADO = {"tipo_identificador": "NIF", "identificador": "12345678Z", "nombre": "Lucía"}


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["tramitador"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["tramitador"]) as c:
        yield c


async def export(client: httpx.AsyncClient, headers: dict[str, str], codigo: str, v: int) -> str:
    response = await client.get(f"{BASE}/{codigo}/versiones/{v}/yaml", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    return response.text


async def test_every_council_starts_with_the_seeded_catalogue(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    response = await client.get(BASE, headers=bearer(token(tenant)))
    assert response.status_code == 200
    items = response.json()["items"]
    assert {p["codigo"] for p in items} == SEEDED
    assert {(p["version"], p["estado"]) for p in items} == {(1, "publicado")}
    vado = next(p for p in items if p["codigo"] == "licencia-vado")
    assert vado["silencio"] == "desestimatorio"
    assert vado["plazo_resolucion"] == {"cantidad": 3, "unidad": "meses"}
    assert len(definiciones_incluidas()) == len(SEEDED)


async def test_import_publish_and_retire_versions(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    definicion = yaml.safe_load(await export(client, admin, "licencia-vado", 1))
    # A council's local override: its own unit and fee.
    definicion["unidad_tramitadora"] = "movilidad-urbana"
    definicion["tasas"][0]["importe"] = "110.00"
    staff = await client.post(
        BASE,
        content=yaml.safe_dump(definicion, allow_unicode=True),
        headers={**bearer(token(tenant, "tramitador")), "Content-Type": "application/yaml"},
    )
    assert staff.status_code == 403
    created = await client.post(
        BASE,
        content=yaml.safe_dump(definicion, allow_unicode=True),
        headers={**admin, "Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    assert (created.json()["version"], created.json()["estado"]) == (2, "borrador")
    assert created.headers["location"].endswith("/licencia-vado/versiones/2")

    published = await client.post(f"{BASE}/licencia-vado/versiones/2/publicar", headers=admin)
    assert published.status_code == 200
    assert published.json()["unidad_tramitadora"] == "movilidad-urbana"
    versions = (await client.get(f"{BASE}/licencia-vado/versiones", headers=admin)).json()
    assert [(v["version"], v["estado"]) for v in versions] == [(1, "retirado"), (2, "publicado")]
    again = await client.post(f"{BASE}/licencia-vado/versiones/2/publicar", headers=admin)
    assert again.status_code == 409
    assert yaml.safe_load(await export(client, admin, "licencia-vado", 2)) == definicion

    # JSON import works too, and a retired procedure takes no new expedientes.
    as_json = await client.post(BASE, json={"definicion": definicion}, headers=admin)
    assert as_json.json()["version"] == 3
    retired = await client.post(f"{BASE}/licencia-vado/versiones/2/retirar", headers=admin)
    assert retired.json()["estado"] == "retirado"
    listed = (await client.get(BASE, headers=admin)).json()["items"]
    assert "licencia-vado" not in {p["codigo"] for p in listed}


async def test_bad_definitions_are_refused_with_the_schema_path(client, new_tenant, token):
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    definicion = yaml.safe_load(await export(client, admin, "generico", 1))
    definicion["silencio"] = "positivo"
    definicion["flujo"]["fases"][1]["tramites"][0]["asignado"] = {}
    refused = await client.post(BASE, json={"definicion": definicion}, headers=admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in refused.json()["errors"]}
    assert fields == {"definicion.silencio", "definicion.flujo.fases[1].tramites[0].asignado"}

    broken = yaml.safe_load(await export(client, admin, "generico", 1))
    broken["flujo"]["acciones"][0]["hacia"] = "no-existe"
    refused = await client.post(BASE, json={"definicion": broken}, headers=admin)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["definicion.flujo.acciones[0].hacia"]

    not_yaml = await client.post(
        BASE, content=b"codigo: [", headers={**admin, "Content-Type": "application/yaml"}
    )
    assert not_yaml.status_code == 422
    assert not_yaml.json()["errors"][0]["field"] == "definicion.(yaml)"


async def test_a_published_version_is_immutable_and_expedientes_keep_theirs(
    client, settings: Settings, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    body = {
        "procedimiento": "expediente-sancionador",
        "asunto": "Ruidos",
        "interesados": [INTERESADO],
    }
    first = await client.post("/api/v1/tramitador/expedientes", json=body, headers=admin)
    assert first.status_code == 201, first.text
    assert first.json()["procedimiento_version"] == 1

    definicion = yaml.safe_load(await export(client, admin, "expediente-sancionador", 1))
    definicion["flujo"]["fases"][0]["nombre"] = "Acuerdo de iniciación (art. 64)"
    await client.post(BASE, json={"definicion": definicion}, headers=admin)
    await client.post(f"{BASE}/expediente-sancionador/versiones/2/publicar", headers=admin)
    second = await client.post("/api/v1/tramitador/expedientes", json=body, headers=admin)
    assert second.json()["procedimiento_version"] == 2
    assert second.json()["fase_nombre"] == "Acuerdo de iniciación (art. 64)"
    old = await client.get(f"/api/v1/tramitador/expedientes/{first.json()['id']}", headers=admin)
    assert old.json()["procedimiento_version"] == 1
    assert old.json()["fase_nombre"] == "Acuerdo de inicio"

    db = Database(settings.app_database_url())
    try:
        with pytest.raises(DBAPIError, match="inmutable"):
            async with tenant_transaction(db, tenant) as session:
                await session.execute(
                    text(
                        "UPDATE tramitador.procedimiento_versiones SET definicion = '{}' "
                        "WHERE codigo = 'expediente-sancionador' AND version = 2"
                    )
                )
        async with tenant_transaction(db, tenant) as session:
            seen = (
                (
                    await session.execute(
                        text("SELECT DISTINCT tenant_id FROM tramitador.procedimiento_versiones")
                    )
                )
                .scalars()
                .all()
            )
        assert seen == [tenant]
    finally:
        await db.dispose()
