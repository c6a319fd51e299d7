"""Citizens presenting asientos through the sede (role ciudadano), on real PostgreSQL:
only as themselves or as a representante the office has on record, in force; what only
a desk does is refused with the field named; a citizen sees only their own asientos."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.settings import Settings
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, running_platform

pytestmark = pytest.mark.integration

URL = "/api/v1/registro/asientos"
REPRESENTACIONES = "/api/v1/registro/representaciones"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


def persona(identificador: str, nombre: str = "Lucía") -> dict[str, Any]:
    return factories.interesado(identificador=identificador, nombre=nombre)


def representado_por(poderdante: str, representante: str) -> dict[str, Any]:
    return {
        **persona(poderdante, "Pedro"),
        "representante": {
            "tipo_identificador": "NIF",
            "identificador": representante,
            "nombre": "Lucía",
        },
    }


async def presentar(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    return await client.post(URL, json=factories.asiento(**fields), headers=headers)


async def test_a_citizen_presents_as_themselves(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    nif = factories.nif()
    ciudadano = bearer(token(tenant, "ciudadano", sub="cl@ve-123", nif=nif))
    response = await presentar(client, ciudadano, interesados=[persona(nif)])
    assert response.status_code == 201, response.text
    asiento = response.json()
    assert asiento["canal"] == "electronico"
    assert asiento["registrado_por"] == "cl@ve-123"
    assert asiento["tipo"] == "entrada"
    # Staff registrations stay presencial.
    staff = bearer(token(tenant, "registro"))
    presencial = await presentar(client, staff)
    assert presencial.json()["canal"] == "presencial"


async def test_a_citizen_cannot_present_for_somebody_else(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    nif, otro = factories.nif(), factories.nif()
    ciudadano = bearer(token(tenant, "ciudadano", sub="c1", nif=nif))
    response = await presentar(client, ciudadano, interesados=[persona(nif), persona(otro)])
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["interesados[1]"]


async def test_a_token_without_nif_cannot_present(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    response = await presentar(client, bearer(token(tenant, "ciudadano", sub="c1")))
    assert response.status_code == 403
    assert "nif" in response.json()["detail"]


@pytest.mark.parametrize(
    ("cambio", "campo"),
    [
        ({"tipo": "salida"}, "tipo"),
        ({"transporte": {"tipo": "02"}}, "transporte"),
        ({"documentacion_fisica": "1"}, "documentacion_fisica"),
        ({"origen": {"entidad_registral": "O00002741"}}, "origen"),
    ],
)
async def test_what_only_a_desk_does_is_refused(client, new_tenant, token, cambio, campo) -> None:
    tenant = await new_tenant()
    nif = factories.nif()
    ciudadano = bearer(token(tenant, "ciudadano", sub="c1", nif=nif))
    response = await presentar(client, ciudadano, interesados=[persona(nif)], **cambio)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [campo]


async def test_a_representante_needs_a_recorded_representation_in_force(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    nif, poderdante = factories.nif(), factories.nif()
    ciudadano = bearer(token(tenant, "ciudadano", sub="c1", nif=nif))
    staff = bearer(token(tenant, "registro", sub="funcionaria"))
    cuerpo = {"interesados": [representado_por(poderdante, nif)]}

    sin_poder = await presentar(client, ciudadano, **cuerpo)
    assert sin_poder.status_code == 403
    assert poderdante in sin_poder.json()["errors"][0]["message"]

    caducada = await client.post(
        REPRESENTACIONES,
        json={
            "poderdante": {"tipo_identificador": "NIF", "identificador": poderdante, "nombre": "P"},
            "representante": {"tipo_identificador": "NIF", "identificador": nif, "nombre": "L"},
            "vigente_desde": str(date.today() - timedelta(days=30)),
            "vigente_hasta": str(date.today() - timedelta(days=2)),
        },
        headers=staff,
    )
    assert caducada.status_code == 201, caducada.text
    assert (await presentar(client, ciudadano, **cuerpo)).status_code == 403

    poder = await client.post(
        REPRESENTACIONES,
        json={
            "poderdante": {"tipo_identificador": "NIF", "identificador": poderdante, "nombre": "P"},
            "representante": {"tipo_identificador": "NIF", "identificador": nif, "nombre": "L"},
            "documento": "Apoderamiento apud acta de 2026-11-20",
        },
        headers=staff,
    )
    assert poder.status_code == 201, poder.text
    con_poder = await presentar(client, ciudadano, **cuerpo)
    assert con_poder.status_code == 201, con_poder.text
    assert con_poder.json()["interesados"][0]["representante"]["identificador"] == nif

    revocada = await client.post(
        f"{REPRESENTACIONES}/{poder.json()['id']}/revocar",
        json={"motivo": "Revocada por el poderdante"},
        headers=staff,
    )
    assert revocada.status_code == 200
    assert revocada.json()["revocada_por"] == "funcionaria"
    assert (await presentar(client, ciudadano, **cuerpo)).status_code == 403
    again = await client.post(
        f"{REPRESENTACIONES}/{poder.json()['id']}/revocar", json={"motivo": "x"}, headers=staff
    )
    assert again.status_code == 409

    listed = await client.get(REPRESENTACIONES, params={"poderdante": poderdante}, headers=staff)
    assert listed.json()["total"] == 2
    # Recording and revoking are audited in the same transactions.
    runtime = platform.runtimes["registro"]
    async with tenant_transaction(runtime.db, tenant) as session:
        audit = runtime.tables.audit_log
        acciones = (
            await session.execute(select(audit.c.action).where(audit.c.entity == "representacion"))
        ).scalars()
        assert sorted(acciones) == [
            "registrar-representacion",
            "registrar-representacion",
            "revocar-representacion",
        ]


async def test_representaciones_are_staff_only_and_per_entity(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    staff = bearer(token(tenant, "registro"))
    poder = await client.post(
        REPRESENTACIONES,
        json={
            "poderdante": {
                "tipo_identificador": "CIF",
                "identificador": "B12345674",
                "nombre": "S",
            },
            "representante": {
                "tipo_identificador": "NIF",
                "identificador": factories.nif(),
                "nombre": "L",
            },
        },
        headers=staff,
    )
    assert poder.status_code == 201
    url = f"{REPRESENTACIONES}/{poder.json()['id']}"
    assert (await client.get(url, headers=staff)).status_code == 200
    otra = bearer(token(await new_tenant(), "registro"))
    assert (await client.get(url, headers=otra)).status_code == 404
    ciudadano = bearer(token(tenant, "ciudadano", sub="c1", nif=factories.nif()))
    assert (await client.get(url, headers=ciudadano)).status_code == 403
    malo = await client.post(
        REPRESENTACIONES,
        json={
            "poderdante": {
                "tipo_identificador": "NIF",
                "identificador": "12345678A",
                "nombre": "P",
            },
            "representante": {"tipo_identificador": "NIF", "identificador": "1", "nombre": "L"},
        },
        headers=staff,
    )
    assert malo.status_code == 422 and "identificador" in malo.text


async def test_a_citizen_sees_only_their_own_asientos(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    nif_a, nif_b = factories.nif(), factories.nif()
    a = bearer(token(tenant, "ciudadano", sub="ciudadana-a", nif=nif_a))
    b = bearer(token(tenant, "ciudadano", sub="ciudadano-b", nif=nif_b))
    suyo = (await presentar(client, a, interesados=[persona(nif_a)])).json()
    ajeno = (await presentar(client, b, interesados=[persona(nif_b)])).json()
    staff = bearer(token(tenant, "registro"))
    await presentar(client, staff)

    assert (await client.get(f"{URL}/{suyo['id']}", headers=a)).status_code == 200
    assert (await client.get(f"{URL}/{ajeno['id']}", headers=a)).status_code == 404
    assert (await client.get(f"{URL}/{ajeno['id']}/justificante", headers=a)).status_code == 404
    listed = (await client.get(URL, headers=a)).json()
    assert [x["id"] for x in listed["items"]] == [suyo["id"]] and listed["total"] == 1
    assert (await client.get(URL, headers=staff)).json()["total"] == 3
    # Nor can a citizen annul, or cite somebody else's asiento as corrected.
    anular = await client.post(f"{URL}/{suyo['id']}/anular", json={"motivo": "x"}, headers=a)
    assert anular.status_code == 403
    cita = await presentar(client, a, interesados=[persona(nif_a)], corrige=ajeno["id"])
    assert cita.status_code == 422 and cita.json()["errors"][0]["field"] == "corrige"
    propia = await presentar(client, a, interesados=[persona(nif_a)], corrige=suyo["id"])
    assert propia.status_code == 201


async def test_the_sede_registers_in_the_oficina_electronica(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    for codigo, electronica in (("O00002741", False), ("O00009001", True)):
        alta = await client.post(
            "/api/v1/registro/oficinas",
            json={"codigo": codigo, "nombre": f"Oficina {codigo}", "electronica": electronica},
            headers=admin,
        )
        assert alta.status_code == 201, alta.text
        assert alta.json()["electronica"] is electronica
    otra = await client.post(
        "/api/v1/registro/oficinas",
        json={"codigo": "O00009002", "nombre": "Otra sede", "electronica": True},
        headers=admin,
    )
    assert otra.status_code == 409 and "O00009001" in otra.json()["detail"]
    modo = await client.put("/api/v1/registro/numeracion", json={"modo": "oficina"}, headers=admin)
    assert modo.status_code == 200, modo.text

    nif = factories.nif()
    ciudadano = bearer(token(tenant, "ciudadano", sub="c1", nif=nif))
    response = await presentar(client, ciudadano, interesados=[persona(nif)])
    assert response.status_code == 201, response.text
    asiento = response.json()
    # The e-office was the second one created: prefix 2, its own sequence.
    assert asiento["oficina"] == "O00009001"
    assert asiento["numero"].endswith("/002000001")
    # Staff at a desk still name their oficina.
    staff = bearer(token(tenant, "registro"))
    sin_oficina = await presentar(client, staff)
    assert sin_oficina.status_code == 422
    assert sin_oficina.json()["errors"][0]["field"] == "oficina"
