"""The calendar of a council on real PostgreSQL: local holidays set by an admin make
plazos longer for that council only, and are protected by row-level security."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.bootstrap import Platform
from services.common.db import Database, asyncpg_url, tenant_transaction
from services.common.settings import Settings
from services.common.tenants import Tenant, add_tenant
from tests.support.platforms import asgi_client, bearer, running_platform

pytestmark = pytest.mark.integration

BASE = "/api/v1/tramitador/calendario"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["tramitador"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["tramitador"]) as c:
        yield c


async def tenant_in_province(database_url: str, provincia: str) -> str:
    """A fresh council of one province (the comunidad comes from the INE code)."""
    engine = create_async_engine(asyncpg_url(database_url))
    try:
        async with engine.begin() as conn:
            while True:
                code = f"{provincia}{random.randrange(1, 1000):03d}"
                found = await conn.execute(
                    text("SELECT 1 FROM plataforma.tenants WHERE ine_code = :c"), {"c": code}
                )
                if found.first() is None:
                    break
            await add_tenant(conn, Tenant(code, f"Ayuntamiento {code}", "L01000000"))
        return code
    finally:
        await engine.dispose()


async def plazo(client: httpx.AsyncClient, headers: dict[str, str], **params: object) -> dict:
    response = await client.get(f"{BASE}/plazos", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_local_holidays_lengthen_plazos_of_their_council_only(
    client: httpx.AsyncClient, database_url: str, token
) -> None:
    valencia = await tenant_in_province(database_url, "46")
    madrid = await tenant_in_province(database_url, "28")
    admin, staff = bearer(token(valencia, "admin")), bearer(token(valencia, "tramitador"))
    query = {"desde": "2025-04-10", "cantidad": 10, "unidad": "dias_habiles"}
    before = await plazo(client, staff, **query)
    assert (before["vencimiento"], before["comunidad"]) == ("2025-04-28", "VC")

    refused = await client.put(
        f"{BASE}/2025/festivos-locales", json={"fechas": ["2025-04-28"]}, headers=staff
    )
    assert refused.status_code == 403
    put = await client.put(
        f"{BASE}/2025/festivos-locales",
        json={"fechas": ["2025-04-28", "2025-01-22"]},
        headers=admin,
    )
    assert put.status_code == 200, put.text
    assert put.json()["festivos_locales"] == ["2025-01-22", "2025-04-28"]

    after = await plazo(client, staff, **query)
    assert after["vencimiento"] == "2025-04-29"
    assert after["dias_habiles"] == 10
    other = await plazo(client, bearer(token(madrid, "tramitador")), **query)
    assert (other["vencimiento"], other["comunidad"]) == ("2025-04-28", "MD")

    # Setting a year again replaces its list.
    await client.put(f"{BASE}/2025/festivos-locales", json={"fechas": []}, headers=admin)
    assert (await plazo(client, staff, **query))["vencimiento"] == "2025-04-28"


async def test_month_plazo_ending_on_a_holiday(client: httpx.AsyncClient, database_url, token):
    valencia = await tenant_in_province(database_url, "03")
    headers = bearer(token(valencia, "tramitador"))
    answer = await plazo(client, headers, desde="2026-09-09", cantidad=1, unidad="meses")
    assert answer["vencimiento"] == "2026-10-13"
    festivos = await client.get(f"{BASE}/2026/festivos", headers=headers)
    nombres = {f["fecha"]: f["nombre"] for f in festivos.json()["festivos"]}
    assert "2026-10-09" in nombres


async def test_art_30_6_the_interesados_residence_counts(
    client: httpx.AsyncClient, database_url, token
) -> None:
    alicante = await tenant_in_province(database_url, "03")
    headers = bearer(token(alicante, "tramitador"))
    # 2 November 2026 is a holiday in the Comunidad de Madrid, not in Valencia.
    seat = await plazo(client, headers, desde="2026-10-30", cantidad=1, unidad="dias_habiles")
    assert (seat["vencimiento"], seat["residencia"]) == ("2026-11-02", [])
    both = await plazo(
        client, headers, desde="2026-10-30", cantidad=1, unidad="dias_habiles", residencia="28079"
    )
    assert (both["vencimiento"], both["residencia"], both["comunidad"]) == (
        "2026-11-03",
        ["MD"],
        "VC",
    )
    bad = await client.get(
        f"{BASE}/plazos",
        params={"desde": "2026-10-30", "cantidad": 1, "unidad": "meses", "residencia": "Madrid"},
        headers=headers,
    )
    assert bad.status_code == 422 and "residencia" in bad.text


async def test_bad_input_names_the_field(client: httpx.AsyncClient, new_tenant, token) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    wrong_year = await client.put(
        f"{BASE}/2026/festivos-locales",
        json={"fechas": ["2026-01-22", "2025-06-24"]},
        headers=admin,
    )
    assert wrong_year.status_code == 422
    assert wrong_year.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in wrong_year.json()["errors"]] == ["fechas[1]"]
    bad_unit = await client.get(
        f"{BASE}/plazos",
        params={"desde": "2026-01-01", "cantidad": 3, "unidad": "semanas"},
        headers=admin,
    )
    assert bad_unit.status_code == 422
    assert "unidad" in bad_unit.text
    assert (await client.get(f"{BASE}/plazos", params={"desde": "x"})).status_code == 401


async def test_local_holidays_are_isolated_by_row_level_security(
    client: httpx.AsyncClient, settings: Settings, new_tenant, token
) -> None:
    a, b = await new_tenant(), await new_tenant()
    for tenant in (a, b):
        response = await client.put(
            f"{BASE}/2026/festivos-locales",
            json={"fechas": ["2026-06-24"]},
            headers=bearer(token(tenant, "admin")),
        )
        assert response.status_code == 200
    db = Database(settings.app_database_url())
    try:
        async with tenant_transaction(db, a) as session:
            seen = (
                (await session.execute(text("SELECT tenant_id FROM tramitador.festivos_locales")))
                .scalars()
                .all()
            )
        assert seen == [a]
    finally:
        await db.dispose()
