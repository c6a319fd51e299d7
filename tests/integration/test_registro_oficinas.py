"""Oficinas de registro, libros and numbering modes on real PostgreSQL: administrators
manage them through the API (audited, role-checked, tenant-isolated), and numbering is
gapless per year in both modes under concurrency, refuses closed libros (409) and
unknown or closed oficinas (422), and never mixes modes within a year."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.errors import Unprocessable
from services.common.uow import Actor
from services.registro.domain import TipoAsiento, anio_registral
from services.registro.oficinas import service as oficinas
from services.registro.oficinas.service import LibroCerrado, Numeracion
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, running_platform

EJEMPLO = Path(__file__).parents[1] / "fixtures" / "sicres3" / "ejemplo-ficheroIntercambio.xml"

pytestmark = pytest.mark.integration

BASE = "/api/v1/registro"
OF1, OF2 = "O00000001", "O00000002"


@pytest.fixture
async def platform(settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


async def numerar(
    platform: Platform, tenant: str, tipo: str = "entrada", oficina: str | None = None
) -> Numeracion:
    """Takes a number the way registering does, in a transaction of its own."""
    runtime = platform.runtimes["registro"]
    async with runtime.unit_of_work(tenant, Actor("prueba")) as uow:
        return await oficinas.numerar(
            uow, tipo=TipoAsiento(tipo), oficina=oficina, fecha=datetime.now(UTC)
        )


async def post(client: httpx.AsyncClient, url: str, headers: dict[str, str], **body: Any) -> Any:
    response = await client.post(f"{BASE}{url}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def registrar(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> httpx.Response:
    return await client.post(f"{BASE}/asientos", json=factories.asiento(**fields), headers=headers)


async def audit_rows(platform: Platform, tenant: str, entity: str) -> list[Any]:
    runtime = platform.runtimes["registro"]
    audit = runtime.tables.audit_log
    async with tenant_transaction(runtime.db, tenant) as session:
        query = select(audit).where(audit.c.entity == entity).order_by(audit.c.id)
        return list((await session.execute(query)).all())


async def test_admin_creates_lists_closes_and_reopens_oficinas(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin", sub="alcaldia"))
    response = await client.post(
        f"{BASE}/oficinas", json={"codigo": "o00000002", "nombre": " Norte "}, headers=admin
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{BASE}/oficinas/{OF2}"
    creada = response.json()
    assert (creada["codigo"], creada["nombre"], creada["estado"]) == (OF2, "Norte", "activa")
    assert creada["prefijo"] == 1
    assert creada["creada_por"] == "alcaldia" and creada["cerrada_en"] is None
    assert (await post(client, "/oficinas", admin, codigo=OF1, nombre="Central"))["prefijo"] == 2
    again = await client.post(
        f"{BASE}/oficinas", json={"codigo": OF1, "nombre": "Otra"}, headers=admin
    )
    assert again.status_code == 409
    assert OF1 in again.json()["detail"]
    # The refused creation gave its prefijo back: prefijos have no gaps.
    assert (await post(client, "/oficinas", admin, codigo="O00000003", nombre="Sur"))[
        "prefijo"
    ] == 3

    staff = bearer(token(tenant, "registro"))
    listed = await client.get(f"{BASE}/oficinas", headers=staff)
    assert [o["codigo"] for o in listed.json()] == [OF1, OF2, "O00000003"]

    cerrada = await post(client, f"/oficinas/{OF2}/cerrar", admin, motivo=" Traslado ")
    assert cerrada["estado"] == "cerrada" and cerrada["motivo_cierre"] == "Traslado"
    assert cerrada["cerrada_por"] == "alcaldia"
    twice = await client.post(f"{BASE}/oficinas/{OF2}/cerrar", json={"motivo": "x"}, headers=admin)
    assert twice.status_code == 409
    activas = await client.get(f"{BASE}/oficinas", params={"estado": "activa"}, headers=staff)
    assert [o["codigo"] for o in activas.json()] == [OF1, "O00000003"]
    got = await client.get(f"{BASE}/oficinas/{OF2}", headers=staff)
    assert got.json() == cerrada

    reabierta = await post(client, f"/oficinas/{OF2}/abrir", admin)
    assert reabierta["estado"] == "activa" and reabierta["motivo_cierre"] is None

    rows = await audit_rows(platform, tenant, "oficina")
    assert [(r.action, r.entity_id) for r in rows] == [
        ("crear-oficina", OF2),
        ("crear-oficina", OF1),
        ("crear-oficina", "O00000003"),
        ("cerrar-oficina", OF2),
        ("reabrir-oficina", OF2),
    ]
    assert all(r.actor == "alcaldia" for r in rows)
    assert rows[3].old_values["estado"] == "activa"
    assert rows[3].new_values["motivo_cierre"] == "Traslado"


async def test_bad_oficina_input_is_a_422_naming_the_field(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    for body, field in (
        ({"codigo": "L01030149", "nombre": "Ayto"}, "codigo"),
        ({"codigo": "O0000001", "nombre": "Corta"}, "codigo"),
        ({"codigo": OF1, "nombre": "  "}, "nombre"),
        ({"codigo": OF1, "nombre": "x" * 81}, "nombre"),
    ):
        bad = await client.post(f"{BASE}/oficinas", json=body, headers=admin)
        assert bad.status_code == 422, body
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in bad.json()["errors"]] == [field]
    await post(client, "/oficinas", admin, codigo=OF1, nombre="Central")
    blank = await client.post(f"{BASE}/oficinas/{OF1}/cerrar", json={"motivo": " "}, headers=admin)
    assert blank.status_code == 422
    assert [e["field"] for e in blank.json()["errors"]] == ["motivo"]


async def test_roles_and_tenants_are_checked(client, new_tenant, token) -> None:
    a, b = await new_tenant(), await new_tenant()
    admin_a = bearer(token(a, "admin"))
    await post(client, "/oficinas", admin_a, codigo=OF1, nombre="Central")
    libro = await post(client, "/libros", admin_a, tipo="entrada", oficina=OF1)

    staff_a = bearer(token(a, "registro"))
    for url, body in (
        ("/oficinas", {"codigo": OF2, "nombre": "Norte"}),
        (f"/oficinas/{OF1}/cerrar", {"motivo": "x"}),
        ("/libros", {"tipo": "salida"}),
        (f"/libros/{libro['id']}/cerrar", {"motivo": "x"}),
        (f"/libros/{libro['id']}/abrir", {}),
    ):
        forbidden = await client.post(f"{BASE}{url}", json=body, headers=staff_a)
        assert forbidden.status_code == 403, url
        assert forbidden.headers["content-type"].startswith("application/problem+json")
    put = await client.put(f"{BASE}/numeracion", json={"modo": "oficina"}, headers=staff_a)
    assert put.status_code == 403
    # Staff read what they register against.
    assert (await client.get(f"{BASE}/libros", headers=staff_a)).status_code == 200
    assert (await client.get(f"{BASE}/numeracion", headers=staff_a)).status_code == 200
    nobody = bearer(token(a, "tramitador"))
    assert (await client.get(f"{BASE}/oficinas", headers=nobody)).status_code == 403

    admin_b = bearer(token(b, "admin"))
    for method, url, body in (
        ("GET", f"/oficinas/{OF1}", None),
        ("POST", f"/oficinas/{OF1}/cerrar", {"motivo": "ajena"}),
        ("GET", f"/libros/{libro['id']}", None),
        ("POST", f"/libros/{libro['id']}/cerrar", {"motivo": "ajeno"}),
        ("POST", f"/libros/{libro['id']}/abrir", None),
        ("GET", "/libros/no-es-un-uuid", None),
        ("GET", "/oficinas/no-es-un-codigo", None),
    ):
        other = await client.request(method, f"{BASE}{url}", json=body, headers=admin_b)
        assert other.status_code == 404, url
        assert other.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"{BASE}/oficinas", headers=admin_b)).json() == []
    assert (await client.get(f"{BASE}/libros", headers=admin_b)).json() == []
    # B may have its own oficina with the same code: codes are unique per entity.
    await post(client, "/oficinas", admin_b, codigo=OF1, nombre="La de B")
    # A libro for another entity's oficina does not exist for B's admin.
    still = await client.get(f"{BASE}/libros/{libro['id']}", headers=staff_a)
    assert still.json()["estado"] == "abierto"


async def test_libros_open_close_and_reopen_audited(client, platform, new_tenant, token) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin", sub="secretaria"))
    await post(client, "/oficinas", admin, codigo=OF1, nombre="Central")
    response = await client.post(f"{BASE}/libros", json={"tipo": "entrada"}, headers=admin)
    assert response.status_code == 201, response.text
    central = response.json()
    assert response.headers["location"] == f"{BASE}/libros/{central['id']}"
    assert (central["tipo"], central["oficina"], central["estado"]) == ("entrada", None, "abierto")
    assert central["nombre"] == "libro de entrada central"
    assert central["abierto_por"] == "secretaria"
    propio = await post(client, "/libros", admin, tipo="entrada", oficina=OF1.lower())
    assert propio["oficina"] == OF1
    assert propio["nombre"] == f"libro de entrada de la oficina {OF1}"
    for body in ({"tipo": "entrada"}, {"tipo": "entrada", "oficina": OF1}):
        dup = await client.post(f"{BASE}/libros", json=body, headers=admin)
        assert dup.status_code == 409, body
    unknown = await client.post(
        f"{BASE}/libros", json={"tipo": "salida", "oficina": OF2}, headers=admin
    )
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["oficina"]

    cerrado = await post(client, f"/libros/{propio['id']}/cerrar", admin, motivo="Fin de año")
    assert cerrado["estado"] == "cerrado" and cerrado["motivo_cierre"] == "Fin de año"
    assert cerrado["cerrado_por"] == "secretaria" and cerrado["cerrado_en"]
    twice = await client.post(
        f"{BASE}/libros/{propio['id']}/cerrar", json={"motivo": "x"}, headers=admin
    )
    assert twice.status_code == 409
    no_motivo = await client.post(f"{BASE}/libros/{central['id']}/cerrar", json={}, headers=admin)
    assert no_motivo.status_code == 422
    assert [e["field"] for e in no_motivo.json()["errors"]] == ["motivo"]

    staff = bearer(token(tenant, "registro"))
    listed = await client.get(f"{BASE}/libros", headers=staff)
    assert [(lb["oficina"], lb["estado"]) for lb in listed.json()] == [
        (None, "abierto"),
        (OF1, "cerrado"),
    ]
    closed_only = await client.get(f"{BASE}/libros", params={"estado": "cerrado"}, headers=staff)
    assert [lb["id"] for lb in closed_only.json()] == [propio["id"]]

    # The libro of a closed oficina is not reopened before the oficina.
    await post(client, f"/oficinas/{OF1}/cerrar", admin, motivo="Obras")
    blocked = await client.post(f"{BASE}/libros/{propio['id']}/abrir", headers=admin)
    assert blocked.status_code == 409
    assert OF1 in blocked.json()["detail"]
    await post(client, f"/oficinas/{OF1}/abrir", admin)
    reabierto = await post(client, f"/libros/{propio['id']}/abrir", admin)
    assert reabierto["estado"] == "abierto" and reabierto["cerrado_en"] is None
    assert (
        await client.post(f"{BASE}/libros/{propio['id']}/abrir", headers=admin)
    ).status_code == 409

    rows = await audit_rows(platform, tenant, "libro")
    assert [(r.action, r.entity_id) for r in rows] == [
        ("abrir-libro", central["id"]),
        ("abrir-libro", propio["id"]),
        ("cerrar-libro", propio["id"]),
        ("reabrir-libro", propio["id"]),
    ]
    assert rows[2].old_values["estado"] == "abierto"
    assert rows[2].new_values["motivo_cierre"] == "Fin de año"
    assert rows[3].new_values["estado"] == "abierto"


async def test_without_setup_numbering_is_central_with_implicit_books(platform, new_tenant) -> None:
    tenant = await new_tenant()
    primero = await numerar(platform, tenant)
    segundo = await numerar(platform, tenant)
    salida = await numerar(platform, tenant, "salida")
    anio = anio_registral(datetime.now(UTC), tenant)
    assert primero.numero == f"E/{anio}/000001" and primero.libro_id is None
    assert (segundo.secuencia, salida.secuencia) == (2, 1)
    assert salida.numero == f"S/{anio}/000001"


async def test_closed_libro_refuses_and_oficina_must_exist_and_be_active(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    await post(client, "/oficinas", admin, codigo=OF1, nombre="Central")
    await post(client, "/oficinas", admin, codigo=OF2, nombre="Norte")
    central = await post(client, "/libros", admin, tipo="entrada")
    norte = await post(client, "/libros", admin, tipo="entrada", oficina=OF2)

    assert (await numerar(platform, tenant, oficina=OF1)).libro_id == central["id"]
    assert (await numerar(platform, tenant, oficina=OF2.lower())).libro_id == norte["id"]
    # Salida has no libro yet: still the implicit book.
    assert (await numerar(platform, tenant, "salida")).libro_id is None

    await post(client, f"/libros/{norte['id']}/cerrar", admin, motivo="Inventario")
    with pytest.raises(LibroCerrado, match=norte["id"]) as closed:
        await numerar(platform, tenant, oficina=OF2)
    assert closed.value.status == 409
    assert f"libro de entrada de la oficina {OF2}" in closed.value.detail
    # The other oficina still registers into the central libro, with the next number.
    assert (await numerar(platform, tenant, oficina=OF1)).secuencia == 3

    for codigo, motivo in (("O00000009", "no existe"), ("nada", "no existe")):
        with pytest.raises(Unprocessable) as bad:
            await numerar(platform, tenant, oficina=codigo)
        assert bad.value.errors[0]["field"] == "oficina"
        assert motivo in bad.value.errors[0]["message"]
    await post(client, f"/oficinas/{OF1}/cerrar", admin, motivo="Traslado")
    with pytest.raises(Unprocessable) as cerrada:
        await numerar(platform, tenant, oficina=OF1)
    assert cerrada.value.errors == [
        {"field": "oficina", "message": f"la oficina {OF1} está cerrada"}
    ]
    # A refused asiento takes no number: the central sequence goes on without a gap.
    assert (await numerar(platform, tenant)).secuencia == 4


async def test_per_oficina_numbering_is_gapless_per_oficina_under_concurrency(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    prefijos = [
        (await post(client, "/oficinas", admin, codigo=codigo, nombre=codigo))["prefijo"]
        for codigo in (OF1, OF2)
    ]
    assert prefijos == [1, 2]
    put = await client.put(f"{BASE}/numeracion", json={"modo": "oficina"}, headers=admin)
    assert put.status_code == 200, put.text
    anio = anio_registral(datetime.now(UTC), tenant)
    assert put.json() == {"modo": "oficina", "anio": anio, "proximo": None}

    staff = bearer(token(tenant, "registro"))
    sin_oficina = await registrar(client, staff)
    assert sin_oficina.status_code == 422
    assert sin_oficina.json()["errors"] == [
        {"field": "oficina", "message": "obligatoria: la entidad numera por oficina"}
    ]

    responses = await asyncio.gather(
        *(registrar(client, staff, oficina=(OF1, OF2)[i % 2]) for i in range(20)),
        *(registrar(client, staff, tipo="salida", oficina=OF1) for _ in range(5)),
    )
    assert [r.status_code for r in responses] == [201] * 25, [r.text for r in responses]
    asientos = [r.json() for r in responses]
    por_serie: dict[tuple[str, str], list[int]] = {}
    for a in asientos:
        por_serie.setdefault((a["tipo"], a["oficina"]), []).append(a["secuencia"])
        prefijo = 1 if a["oficina"] == OF1 else 2
        assert a["numero"] == f"{a['tipo'][0].upper()}/{anio}/{prefijo:03d}{a['secuencia']:06d}"
    assert {k: sorted(v) for k, v in por_serie.items()} == {
        ("entrada", OF1): list(range(1, 11)),
        ("entrada", OF2): list(range(1, 11)),
        ("salida", OF1): list(range(1, 6)),
    }
    assert len({a["numero"] for a in asientos}) == 25
    # Search by number finds each one (the number is unique in the entity).
    found = await client.get(
        f"{BASE}/asientos", params={"numero": f"E/{anio}/002000010"}, headers=staff
    )
    assert [a["oficina"] for a in found.json()["items"]] == [OF2]


async def test_central_numbering_is_gapless_under_concurrency(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    for codigo in (OF1, OF2):
        await post(client, "/oficinas", admin, codigo=codigo, nombre=codigo)
    await post(client, "/libros", admin, tipo="entrada")
    staff = bearer(token(tenant, "registro"))
    responses = await asyncio.gather(
        *(registrar(client, staff, oficina=(OF1, OF2, None)[i % 3]) for i in range(20))
    )
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    asientos = [r.json() for r in responses]
    anio = asientos[0]["anio"]
    assert sorted(a["numero"] for a in asientos) == [f"E/{anio}/{n:06d}" for n in range(1, 21)]
    assert sorted(a["oficina"] or "" for a in asientos).count(OF2) == 7


async def test_registering_into_a_closed_libro_or_oficina_is_refused(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    staff = bearer(token(tenant, "registro"))
    await post(client, "/oficinas", admin, codigo=OF1, nombre="Central")
    libro = await post(client, "/libros", admin, tipo="salida", oficina=OF1)
    await post(client, f"/libros/{libro['id']}/cerrar", admin, motivo="Cierre del ejercicio")
    closed = await registrar(client, staff, tipo="salida", oficina=OF1)
    assert closed.status_code == 409
    assert closed.headers["content-type"].startswith("application/problem+json")
    problem = closed.json()
    assert problem["type"].endswith("/libro-cerrado")
    assert f"libro de salida de la oficina {OF1}" in problem["detail"]
    assert libro["id"] in problem["detail"]
    # No libro central of salida exists, so an asiento without oficina has none either.
    nowhere = await registrar(client, staff, tipo="salida")
    assert nowhere.status_code == 409
    assert "No hay libro de salida central" in nowhere.json()["detail"]
    # Entradas have no libro at all yet: the implicit one takes them.
    assert (await registrar(client, staff, oficina=OF1)).status_code == 201

    unknown = await registrar(client, staff, oficina=OF2)
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        {"field": "oficina", "message": f"no existe la oficina {OF2} en la entidad"}
    ]
    await post(client, f"/oficinas/{OF1}/cerrar", admin, motivo="Traslado")
    cerrada = await registrar(client, staff, oficina=OF1)
    assert cerrada.status_code == 422
    assert cerrada.json()["errors"][0]["field"] == "oficina"
    # Another entity's oficina does not exist here.
    other = await new_tenant()
    await post(client, "/oficinas", bearer(token(other, "admin")), codigo=OF2, nombre="Ajena")
    assert (await registrar(client, staff, oficina=OF2)).status_code == 422
    # Nothing refused took a number.
    ok = await registrar(client, staff)
    assert ok.json()["secuencia"] == 2


async def test_a_change_of_mode_waits_for_next_year_once_something_was_numbered(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin", sub="interventor"))
    await post(client, "/oficinas", admin, codigo=OF1, nombre="Central")
    anio = anio_registral(datetime.now(UTC), tenant)
    staff = bearer(token(tenant, "registro"))
    inicial = await client.get(f"{BASE}/numeracion", headers=staff)
    assert inicial.json() == {"modo": "central", "anio": anio, "proximo": None}

    await numerar(platform, tenant, oficina=OF1)
    programado = await client.put(f"{BASE}/numeracion", json={"modo": "oficina"}, headers=admin)
    assert programado.json() == {
        "modo": "central",
        "anio": anio,
        "proximo": {"modo": "oficina", "desde_anio": anio + 1},
    }
    # This year goes on centrally, without a gap.
    siguiente = await numerar(platform, tenant, oficina=OF1)
    assert siguiente.numero == f"E/{anio}/000002"
    assert (await client.get(f"{BASE}/numeracion", headers=staff)).json() == programado.json()

    # Asking for the current mode cancels the scheduled change.
    cancelado = await client.put(f"{BASE}/numeracion", json={"modo": "central"}, headers=admin)
    assert cancelado.json() == {"modo": "central", "anio": anio, "proximo": None}
    same = await client.put(f"{BASE}/numeracion", json={"modo": "central"}, headers=admin)
    assert same.json() == cancelado.json()
    bad = await client.put(f"{BASE}/numeracion", json={"modo": "mixto"}, headers=admin)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["modo"]

    rows = await audit_rows(platform, tenant, "numeracion")
    # The repeated request changed nothing and is not audited.
    assert [r.action for r in rows] == ["configurar-numeracion", "configurar-numeracion"]
    assert rows[0].actor == "interventor" and rows[0].entity_id == tenant
    assert rows[0].old_values["proximo"] is None
    assert rows[0].new_values["proximo"] == {"modo": "oficina", "desde_anio": anio + 1}


async def test_a_change_of_mode_waits_for_asientos_being_numbered(
    client, platform, new_tenant, token
) -> None:
    """A registration in flight when the mode changes counts as numbered this year."""
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    await post(client, "/oficinas", admin, codigo=OF1, nombre="Central")
    runtime = platform.runtimes["registro"]
    async with runtime.unit_of_work(tenant, Actor("prueba")) as uow:
        en_curso = await oficinas.numerar(
            uow, tipo=TipoAsiento.ENTRADA, oficina=OF1, fecha=datetime.now(UTC)
        )
        cambio = asyncio.create_task(
            client.put(f"{BASE}/numeracion", json={"modo": "oficina"}, headers=admin)
        )
        await asyncio.sleep(0.5)
        assert not cambio.done()
    response = await asyncio.wait_for(cambio, 10)
    assert en_curso.numero.startswith("E/")
    anio = en_curso.anio
    assert response.json()["modo"] == "central"
    assert response.json()["proximo"] == {"modo": "oficina", "desde_anio": anio + 1}


async def test_closing_a_libro_waits_for_asientos_being_registered_in_it(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    libro = await post(client, "/libros", admin, tipo="salida")
    runtime = platform.runtimes["registro"]
    async with runtime.unit_of_work(tenant, Actor("prueba")) as uow:
        en_curso = await oficinas.numerar(
            uow, tipo=TipoAsiento.SALIDA, oficina=None, fecha=datetime.now(UTC)
        )
        cierre = asyncio.create_task(
            client.post(
                f"{BASE}/libros/{libro['id']}/cerrar", json={"motivo": "Cierre"}, headers=admin
            )
        )
        await asyncio.sleep(0.5)
        assert not cierre.done()
    assert (await asyncio.wait_for(cierre, 10)).status_code == 200
    assert en_curso.libro_id == libro["id"]
    with pytest.raises(LibroCerrado):
        await numerar(platform, tenant, "salida")


async def test_an_exchange_is_accepted_into_the_oficina_named(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin"))
    await post(client, "/oficinas", admin, codigo=OF1, nombre="Oficina de registro")
    await post(client, "/oficinas", admin, codigo=OF2, nombre="Oficina de la sede")
    assert (
        await client.put(f"{BASE}/numeracion", json={"modo": "oficina"}, headers=admin)
    ).status_code == 200
    staff = bearer(token(tenant, "registro"))
    recibido = await client.post(
        f"{BASE}/intercambios",
        content=EJEMPLO.read_bytes(),
        headers={**staff, "Content-Type": "application/xml"},
    )
    assert recibido.status_code == 201, recibido.text
    url = f"{BASE}/intercambios/{recibido.json()['id']}/aceptar"

    sin_oficina = await client.post(url, headers=staff)
    assert sin_oficina.status_code == 422
    assert sin_oficina.json()["errors"][0]["field"] == "oficina"
    # Nothing was decided: it can still be accepted, now in an oficina.
    aceptado = await client.post(url, json={"oficina": OF2.lower()}, headers=staff)
    assert aceptado.status_code == 200, aceptado.text
    asiento = (
        await client.get(f"{BASE}/asientos/{aceptado.json()['asiento_id']}", headers=staff)
    ).json()
    assert asiento["oficina"] == OF2
    assert asiento["numero"].endswith("/002000001")
