"""Asientos with every SICRES 3.0 field, on real PostgreSQL and the in-process bus: what is
sent is what is kept, shown and announced; lengths and codes are checked with the field
named; a correction is a new asiento citing the old one; search by oficina and by what
an asiento corrects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.bootstrap import Platform
from services.common.settings import Settings
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, collect_events, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

REGISTRADO = "registro.asiento.registrado.v1"
URL = "/api/v1/registro/asientos"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


async def abrir_oficinas(client: httpx.AsyncClient, tenant: str, token: Any, *codigos: str) -> None:
    """The entity's administrator creates the oficinas the asientos name."""
    admin = bearer(token(tenant, "admin"))
    for codigo in codigos:
        response = await client.post(
            "/api/v1/registro/oficinas",
            json={"codigo": codigo, "nombre": f"Oficina {codigo}"},
            headers=admin,
        )
        assert response.status_code == 201, response.text


async def registrar(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    response = await client.post(URL, json=factories.asiento(**fields), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_every_field_is_kept_shown_and_announced(client, platform, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro"))
    await abrir_oficinas(client, tenant, token, "O00002741")
    events = await collect_events(platform.transport, f"{tenant}.{REGISTRADO}")
    creado = await registrar(
        client, headers, interesados=[factories.interesado_completo()], **factories.CAMPOS_SICRES
    )

    leido = (await client.get(f"{URL}/{creado['id']}", headers=headers)).json()
    assert leido == creado
    assert leido["canal"] == "presencial"
    for campo, valor in factories.CAMPOS_SICRES.items():
        if campo == "origen":
            assert leido["origen"]["numero_registro"] == valor["numero_registro"]
            assert leido["origen"]["entidad_registral"] == valor["entidad_registral"]
        else:
            assert leido[campo] == valor, campo
    interesado = leido["interesados"][0]
    assert interesado["deh"] == "lucia@deh.example.org"
    assert interesado["representante"]["razon_social"] == "Gestoría Levante SL"
    assert interesado["representante"]["canal_preferente"] == "01"

    await eventually(lambda: len(events) == 1)
    data = events[0].data
    assert data["oficina"] == "O00002741" and data["documentacion_fisica"] == "2"
    assert data["codigo_asunto"] == "LIC-OBRA" and data["canal"] == "presencial"
    # The shared interesado contract keeps its required nombre: an entity's is its razón social.
    assert data["interesados"][0]["representante"]["razon_social"] == "Gestoría Levante SL"


async def test_an_entity_is_named_by_its_razon_social(client, new_tenant, token) -> None:
    headers = bearer(token(await new_tenant(), "registro"))
    empresa = {"tipo_identificador": "CIF", "identificador": "B12345674"}
    sin_nombre = await client.post(
        URL, json=factories.asiento(interesados=[empresa]), headers=headers
    )
    assert sin_nombre.status_code == 422
    assert "razon_social" in sin_nombre.text
    # Older clients sent an entity's name as nombre: it is read as its razón social.
    creado = await registrar(client, headers, interesados=[{**empresa, "nombre": "Obras SL"}])
    assert creado["interesados"][0]["razon_social"] == "Obras SL"
    assert creado["interesados"][0].get("nombre") is None
    found = await client.get(URL, params={"interesado": "obras"}, headers=headers)
    assert [a["id"] for a in found.json()["items"]] == [creado["id"]]


@pytest.mark.parametrize(
    ("cambio", "campo"),
    [
        ({"observaciones": "x" * 51}, "observaciones"),
        ({"referencia_externa": "x" * 17}, "referencia_externa"),
        ({"codigo_asunto": "x" * 17}, "codigo_asunto"),
        ({"expone": "x" * 4001}, "expone"),
        ({"transporte": {"tipo": "99"}}, "transporte"),
        ({"documentacion_fisica": "4"}, "documentacion_fisica"),
        ({"oficina": "no-dir3"}, "oficina"),
        ({"entidad_registral_destino": "con espacios"}, "entidad_registral_destino"),
        ({"interesados": [{**factories.interesado(), "codigo_postal": "3001"}]}, "codigo_postal"),
        ({"interesados": [{**factories.interesado(), "canal_preferente": "02"}]}, "interesados"),
        ({"interesados": [{**factories.interesado(), "nombre": "n" * 31}]}, "nombre"),
    ],
)
async def test_bad_fields_are_named(client, new_tenant, token, cambio, campo) -> None:
    headers = bearer(token(await new_tenant(), "registro"))
    response = await client.post(URL, json=factories.asiento(**cambio), headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert campo in response.text


async def test_a_correction_is_a_new_asiento_citing_the_old(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro"))
    original = await registrar(client, headers, resumen="Solicitud con un error en el resumen")
    correccion = await registrar(
        client, headers, resumen="Solicitud corregida", corrige=original["id"]
    )
    assert correccion["corrige"] == original["id"]
    assert correccion["numero"] != original["numero"]
    # The old one is untouched and can be found from it.
    antes = (await client.get(f"{URL}/{original['id']}", headers=headers)).json()
    assert antes["resumen"] == "Solicitud con un error en el resumen"
    assert antes["estado"] == "registrado"
    found = await client.get(URL, params={"corrige": original["id"]}, headers=headers)
    assert [a["id"] for a in found.json()["items"]] == [correccion["id"]]

    # Another entity cannot cite it: to them it does not exist.
    otros = bearer(token(await new_tenant(), "registro"))
    ajena = await client.post(URL, json=factories.asiento(corrige=original["id"]), headers=otros)
    assert ajena.status_code == 422
    assert ajena.json()["errors"][0]["field"] == "corrige"


async def test_search_by_oficina(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro"))
    await abrir_oficinas(client, tenant, token, "O00002741", "O00002742")
    en_una = await registrar(client, headers, oficina="O00002741")
    await registrar(client, headers, oficina="O00002742")
    await registrar(client, headers)
    found = await client.get(URL, params={"oficina": "o00002741"}, headers=headers)
    assert [a["id"] for a in found.json()["items"]] == [en_una["id"]]
    bad = await client.get(URL, params={"oficina": "x"}, headers=headers)
    assert bad.status_code == 422 and "oficina" in bad.text
