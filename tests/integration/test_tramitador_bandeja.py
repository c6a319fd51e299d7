"""The worklist on real PostgreSQL: a user sees the open trámites of their units, nearest
due date first, with counts, filters and cursor pagination, and nothing of another
council."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.common.settings import Settings
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, running_platform

pytestmark = pytest.mark.integration

T = "/api/v1/tramitador"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_platform(settings, ["tramitador"]) as platform:
        yield_client = asgi_client(platform.apps["tramitador"])
        async with yield_client as c:
            yield c


async def de_oficio(client: httpx.AsyncClient, headers: dict[str, str], codigo: str) -> str:
    body = {"procedimiento": codigo, "asunto": codigo, "interesados": [factories.interesado()]}
    created = await client.post(f"{T}/expedientes", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def bandeja(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(f"{T}/bandeja", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_worklist_of_a_users_units(client: httpx.AsyncClient, new_tenant, token) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    ana = bearer(token(tenant, "tramitador", sub="ana"))
    sancionador = await de_oficio(client, admin, "expediente-sancionador")
    compra = await de_oficio(client, admin, "compra-menor")
    assert (await bandeja(client, ana))["items"] == []

    put = await client.put(
        f"{T}/unidades/sanciones/miembros", json={"usuarios": ["ana"]}, headers=admin
    )
    assert put.status_code == 200
    refused = await client.put(
        f"{T}/unidades/sanciones/miembros", json={"usuarios": []}, headers=ana
    )
    assert refused.status_code == 403
    page = await bandeja(client, ana)
    assert [(i["expediente_id"], i["codigo"]) for i in page["items"]] == [
        (sancionador, "acordar-inicio")
    ]
    assert (page["total"], page["vencidos"]) == (1, 0)

    # The compra menor goes to instrucción: its informes have due dates and come first.
    moved = await client.post(f"{T}/expedientes/{compra}/acciones/acordar-inicio", headers=admin)
    assert moved.json()["fase"] == "instruccion"
    await client.put(
        f"{T}/unidades/intervencion/miembros", json={"usuarios": ["ana", "luis"]}, headers=admin
    )
    page = await bandeja(client, ana)
    assert [i["codigo"] for i in page["items"]] == ["retencion-credito", "acordar-inicio"]
    assert page["items"][0]["vencimiento"] is not None
    assert page["items"][1]["vencimiento"] is None
    assert {(r["procedimiento"], r["total"]) for r in page["por_procedimiento"]} == {
        ("compra-menor", 1),
        ("expediente-sancionador", 1),
    }

    first = await bandeja(client, ana, limit=1, contar=False)
    assert first["total"] is None and first["next_cursor"]
    second = await bandeja(client, ana, limit=1, cursor=first["next_cursor"])
    assert [i["codigo"] for i in first["items"] + second["items"]] == [
        "retencion-credito",
        "acordar-inicio",
    ]
    assert second["next_cursor"] is None
    only = await bandeja(client, ana, procedimiento="expediente-sancionador")
    assert [i["expediente_id"] for i in only["items"]] == [sancionador]
    due = await bandeja(client, ana, vence_antes="2100-01-01")
    assert [i["codigo"] for i in due["items"]] == ["retencion-credito"]
    bad = await client.get(f"{T}/bandeja", params={"cursor": "nope"}, headers=ana)
    assert bad.status_code == 422

    other = await new_tenant()
    await client.put(
        f"{T}/unidades/sanciones/miembros",
        json={"usuarios": ["ana"]},
        headers=bearer(token(other, "admin")),
    )
    assert (await bandeja(client, bearer(token(other, "tramitador", sub="ana"))))["items"] == []
