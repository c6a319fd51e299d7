"""Liquidaciones over HTTP on real PostgreSQL: issue, read, list, annul, refund, expire,
self-assess; events in the outbox, audit entries, tenant isolation and row-level security."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from services.bootstrap import Platform
from services.common.bus.consumer import PermanentFailure
from services.common.db import Database, tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.pagos import cuaderno60, service
from services.pagos.models import kernel
from tests.support.pagos import CLAVE_PRUEBAS, Entidad, configurar, liquidacion
from tests.support.platforms import bearer, collect_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BASE = "/api/v1/pagos"


async def _audit(platform: Platform, tenant: str, entity_id: str) -> list[Any]:
    async with tenant_transaction(platform.runtimes["pagos"].db, tenant) as session:
        return list(
            (
                await session.execute(
                    select(kernel.audit_log.c.action, kernel.audit_log.c.new_values)
                    .where(kernel.audit_log.c.entity_id == entity_id)
                    .order_by(kernel.audit_log.c.id)
                )
            ).all()
        )


async def test_issuing_needs_the_emisora(
    client: httpx.AsyncClient, new_tenant: Callable[..., Any], token: Callable[..., str]
) -> None:
    tenant = await new_tenant()
    respuesta = await client.post(
        f"{BASE}/liquidaciones",
        headers=bearer(token(tenant, "pagos")),
        json={
            "concepto": "Tasa",
            "importe": "10.00",
            "obligado": {"tipo_identificador": "NIF", "identificador": "12345678Z", "nombre": "A"},
        },
    )
    assert respuesta.status_code == 409
    assert "emisora" in respuesta.json()["detail"]


async def test_issue_a_liquidacion_with_its_cuaderno60_reference_and_event(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    eventos = await collect_events(
        platform.transport, f"{entidad.tenant}.pagos.liquidacion.emitida.v1"
    )
    vencimiento = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    datos = await liquidacion(client, entidad, vencimiento=vencimiento, tributo="123")
    assert datos["estado"] == "pendiente"
    assert datos["importe"] == "159.00"
    assert datos["emisora"] == "030140"
    anio = datetime.now(UTC).year
    assert datos["numero"].startswith(f"{anio}/")
    # The referencia's check digits hold under the norm's formula.
    assert datos["digitos_control"] == cuaderno60.digitos_control(
        "030140", datos["referencia"][:10], datos["identificacion"], 15900
    )
    assert datos["referencia"] == datos["referencia"][:10] + datos["digitos_control"]
    assert datos["cuaderno60"]["codigo_barras"].startswith("90521030140" + datos["referencia"])
    assert datos["enlaces"]["carta_de_pago"].endswith("/carta-de-pago")
    leida = await client.get(f"{BASE}/liquidaciones/{datos['id']}", headers=entidad.staff)
    assert leida.status_code == 200 and leida.json() == datos
    recibidos = await eventually(lambda: eventos)
    evento = recibidos[0].data
    assert evento["liquidacion_id"] == datos["id"]
    assert evento["importe"] == "159.00"
    assert evento["referencia"] == datos["referencia"]
    assert evento["obligado"]["identificador"] == entidad.nif
    acciones = [a.action for a in await _audit(platform, entidad.tenant, datos["id"])]
    # The carta de pago is asked for by a consumer, whenever it gets the event.
    assert [a for a in acciones if a != "solicitar-carta-de-pago"] == ["emitir"]


async def test_numbers_follow_each_other_per_tenant(
    client: httpx.AsyncClient, entidad: Entidad
) -> None:
    primera = await liquidacion(client, entidad)
    segunda = await liquidacion(client, entidad)
    n1, n2 = (int(d["numero"].split("/")[1]) for d in (primera, segunda))
    assert n2 == n1 + 1
    assert primera["referencia"] != segunda["referencia"]


@pytest.mark.parametrize(
    ("cambio", "campo"),
    [
        ({"importe": 159.0}, "importe"),
        ({"importe": "159.001"}, "importe"),
        ({"importe": "-1.00"}, "importe"),
        ({"importe": "0.00"}, "importe"),
        (
            {
                "obligado": {
                    "tipo_identificador": "NIF",
                    "identificador": "12345678A",
                    "nombre": "X",
                }
            },
            "obligado.identificador",
        ),
        ({"vencimiento": "2001-01-01"}, "vencimiento"),
        # 36 characters of the old pattern, but no UUID: it reached the database (500).
        ({"expediente_id": "0" * 36}, "expediente_id"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, entidad: Entidad, cambio: dict[str, Any], campo: str
) -> None:
    cuerpo = {
        "concepto": "Tasa",
        "importe": "10.00",
        "obligado": {"tipo_identificador": "NIF", "identificador": "12345678Z", "nombre": "A"},
        **cambio,
    }
    respuesta = await client.post(f"{BASE}/liquidaciones", headers=entidad.staff, json=cuerpo)
    assert respuesta.status_code == 422, respuesta.text
    assert respuesta.headers["content-type"].startswith("application/problem+json")
    assert campo in [e["field"] for e in respuesta.json()["errors"]]


async def test_another_tenant_and_another_citizen_get_404(
    client: httpx.AsyncClient,
    entidad: Entidad,
    new_tenant: Callable[..., Any],
    token: Callable[..., str],
) -> None:
    datos = await liquidacion(client, entidad)
    otra = await configurar(client, new_tenant, token)
    ajena = await client.get(f"{BASE}/liquidaciones/{datos['id']}", headers=otra.staff)
    assert ajena.status_code == 404
    assert (
        await client.post(
            f"{BASE}/liquidaciones/{datos['id']}/anular",
            headers=otra.staff,
            json={"motivo": "ajena"},
        )
    ).status_code == 404
    suya = await client.get(f"{BASE}/liquidaciones/{datos['id']}", headers=entidad.ciudadano)
    assert suya.status_code == 200
    vecino = bearer(token(entidad.tenant, "ciudadano", sub="pedro", nif="87654321X"))
    assert (
        await client.get(f"{BASE}/liquidaciones/{datos['id']}", headers=vecino)
    ).status_code == 404
    lista = (await client.get(f"{BASE}/liquidaciones", headers=vecino)).json()
    assert lista == {"items": [], "total": 0}
    propias = (await client.get(f"{BASE}/liquidaciones", headers=entidad.ciudadano)).json()
    assert [i["id"] for i in propias["items"]] == [datos["id"]]
    # A citizen cannot issue, and a token without roles gets nothing.
    assert (
        await client.post(f"{BASE}/liquidaciones", headers=entidad.ciudadano, json={})
    ).status_code == 403
    assert (await client.get(f"{BASE}/liquidaciones")).status_code == 401


async def test_row_level_security_hides_other_tenants_rows(
    client: httpx.AsyncClient,
    settings: Settings,
    entidad: Entidad,
    new_tenant: Callable[..., Any],
    token: Callable[..., str],
) -> None:
    await liquidacion(client, entidad)
    otra = await configurar(client, new_tenant, token)
    await liquidacion(client, otra)
    db = Database(settings.app_database_url())
    try:
        async with tenant_transaction(db, entidad.tenant) as session:
            # No tenant filter: the policy does it.
            tenants = set(
                (await session.execute(text("SELECT tenant_id FROM pagos.liquidaciones")))
                .scalars()
                .all()
            )
            claves = (
                await session.execute(text("SELECT count(*) FROM pagos.configuracion"))
            ).scalar_one()
        assert tenants == {entidad.tenant}
        assert claves == 1
        async with db.sessions() as session, session.begin():
            sin_politica = (
                (
                    await session.execute(
                        text(
                            "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = 'pagos' "
                            "AND c.relkind = 'r' AND NOT c.relrowsecurity"
                        )
                    )
                )
                .scalars()
                .all()
            )
        # Only the kernel's outbox and dead letters, read across tenants by the relay.
        assert sorted(sin_politica) == ["alembic_version", "dead_letters", "outbox"]
    finally:
        await db.dispose()


async def test_annul_then_nothing_more(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    eventos = await collect_events(
        platform.transport, f"{entidad.tenant}.pagos.liquidacion.anulada.v1"
    )
    datos = await liquidacion(client, entidad)
    url = f"{BASE}/liquidaciones/{datos['id']}"
    anulada = await client.post(f"{url}/anular", headers=entidad.staff, json={"motivo": "Error"})
    assert anulada.status_code == 200 and anulada.json()["estado"] == "anulada"
    otra_vez = await client.post(f"{url}/anular", headers=entidad.staff, json={"motivo": "Error"})
    assert otra_vez.status_code == 409
    assert (await client.post(f"{url}/pago-tarjeta", headers=entidad.ciudadano)).status_code == 409
    devuelta = await client.post(
        f"{url}/devolucion", headers=entidad.staff, json={"motivo": "por si acaso"}
    )
    assert devuelta.status_code == 409
    recibidos = await eventually(lambda: eventos)
    assert recibidos[0].data["motivo"] == "Error"
    acciones = [a.action for a in await _audit(platform, entidad.tenant, datos["id"])]
    assert [a for a in acciones if a != "solicitar-carta-de-pago"] == ["emitir", "anular"]


async def test_overdue_liquidaciones_become_vencidas(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    datos = await liquidacion(client, entidad)
    runtime = platform.runtimes["pagos"]
    manana = date.fromisoformat(datos["vencimiento"]) + timedelta(days=1)
    async with runtime.unit_of_work(entidad.tenant, Actor.system("pruebas")) as uow:
        assert await service.marcar_vencidas(uow, hoy=manana) >= 1
    leida = (await client.get(f"{BASE}/liquidaciones/{datos['id']}", headers=entidad.staff)).json()
    assert leida["estado"] == "vencida"
    filtradas = await client.get(
        f"{BASE}/liquidaciones", headers=entidad.staff, params={"estado": "vencida"}
    )
    assert datos["id"] in [i["id"] for i in filtradas.json()["items"]]


async def test_the_merchant_key_is_write_only(
    client: httpx.AsyncClient,
    platform: Platform,
    entidad: Entidad,
    caplog: pytest.LogCaptureFixture,
) -> None:
    leida = await client.get(f"{BASE}/configuracion", headers=entidad.admin)
    assert leida.status_code == 200
    assert leida.json()["redsys"]["clave_configurada"] is True
    assert CLAVE_PRUEBAS not in leida.text
    # Changing the terminal keeps the stored key; a malformed key is refused.
    otra = await client.put(
        f"{BASE}/configuracion",
        headers=entidad.admin,
        json={"redsys": {"comercio": "999008881", "terminal": "2", "url": "https://x.test/p"}},
    )
    assert otra.status_code == 200 and otra.json()["redsys"]["terminal"] == "002"
    mala = await client.put(
        f"{BASE}/configuracion",
        headers=entidad.admin,
        json={
            "redsys": {
                "comercio": "999008881",
                "terminal": "1",
                "clave": "A" * 33,
                "url": "https://x",
            }
        },
    )
    assert mala.status_code == 422
    assert "redsys.clave" in [e["field"] for e in mala.json()["errors"]]
    assert (await client.get(f"{BASE}/configuracion", headers=entidad.staff)).status_code == 403
    async with tenant_transaction(platform.runtimes["pagos"].db, entidad.tenant) as session:
        auditado = (
            (
                await session.execute(
                    text(
                        "SELECT new_values::text FROM pagos.audit_log "
                        "WHERE entity = 'configuracion'"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert auditado and not any(CLAVE_PRUEBAS in a for a in auditado)
    assert CLAVE_PRUEBAS not in caplog.text


async def test_autoliquidacion_from_the_ordenanza(
    client: httpx.AsyncClient, entidad: Entidad, token: Callable[..., str]
) -> None:
    concepto = {
        "nombre": "Tasa por ocupación de vía pública con terrazas",
        "tributo": "210",
        "regla": {
            "tipo": "porcentaje",
            "porcentaje": "4",
            "minimo": "60.00",
            "maximo": "3000.00",
            "exenciones": [
                {
                    "motivo": "Entidad sin ánimo de lucro",
                    "condiciones": [
                        {"dato": "sin_animo_de_lucro", "operador": "igual", "valor": True}
                    ],
                }
            ],
            "bonificaciones": [
                {
                    "motivo": "Comercio de proximidad",
                    "porcentaje": "25",
                    "condiciones": [
                        {"dato": "superficie", "operador": "menor_igual", "valor": "50"}
                    ],
                }
            ],
        },
    }
    definido = await client.put(f"{BASE}/conceptos/TERRAZAS", headers=entidad.staff, json=concepto)
    assert definido.status_code == 200, definido.text
    catalogo = await client.get(f"{BASE}/conceptos", headers=entidad.ciudadano)
    assert [c["codigo"] for c in catalogo.json()] == ["TERRAZAS"]
    respuesta = await client.post(
        f"{BASE}/autoliquidaciones",
        headers=entidad.ciudadano,
        json={"concepto": "TERRAZAS", "declarados": {"base": "10000.00", "superficie": "40"}},
    )
    assert respuesta.status_code == 201, respuesta.text
    cuerpo = respuesta.json()
    assert cuerpo["importe"] == "300.00"  # 4 % of 10 000 = 400, less 25 %
    assert cuerpo["exenta"] is False
    assert cuerpo["liquidacion"]["obligado"]["identificador"] == entidad.nif
    assert cuerpo["liquidacion"]["origen"] == "autoliquidacion"
    assert cuerpo["liquidacion"]["importe"] == "300.00"
    assert cuerpo["liquidacion"]["calculo"] == cuerpo["desglose"]
    exenta = await client.post(
        f"{BASE}/autoliquidaciones",
        headers=entidad.ciudadano,
        json={"concepto": "TERRAZAS", "declarados": {"base": "1", "sin_animo_de_lucro": True}},
    )
    assert exenta.status_code == 201
    assert exenta.json()["exenta"] is True and exenta.json()["liquidacion"] is None
    sin_base = await client.post(
        f"{BASE}/autoliquidaciones",
        headers=entidad.ciudadano,
        json={"concepto": "TERRAZAS", "declarados": {}},
    )
    assert sin_base.status_code == 422
    assert sin_base.json()["errors"][0]["field"] == "declarados.base"
    desconocido = await client.post(
        f"{BASE}/autoliquidaciones", headers=entidad.ciudadano, json={"concepto": "NO"}
    )
    assert desconocido.status_code == 422
    nif_malo = bearer(token(entidad.tenant, "ciudadano", sub="x", nif="12345678A"))
    respuesta = await client.post(
        f"{BASE}/autoliquidaciones", headers=nif_malo, json={"concepto": "TERRAZAS"}
    )
    assert respuesta.status_code == 403


async def test_the_tramitador_asks_for_a_fee_once_per_solicitud(
    platform: Platform, entidad: Entidad
) -> None:
    runtime = platform.runtimes["pagos"]
    expediente = "0195a3c5-1a2b-7c3d-9e4f-5a6b7c8d9e0f"
    datos = {
        "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-000000000001",
        "solicitante": "tramitador",
        "expediente_id": expediente,
        "numero": "EXP/2026/000001",
        "conceptos": [
            {"concepto": "TLA", "nombre": "Tasa por licencia de actividad", "importe": "230.50"},
            {"concepto": "TPU", "nombre": "Tasa de publicación", "importe": "19.45"},
        ],
        "obligado": {
            "tipo_identificador": "NIF",
            "identificador": "12345678Z",
            "nombre": "María",
            "apellido1": None,
        },
    }
    # The consumer takes the command exactly as its contract defines it.
    runtime.contracts.validate(service.REQUERIR_PAGO, datos)
    async with runtime.unit_of_work(entidad.tenant, Actor.system("tramitador")) as uow:
        primera = await service.requerir_pago(uow, datos=datos)
    async with runtime.unit_of_work(entidad.tenant, Actor.system("tramitador")) as uow:
        segunda = await service.requerir_pago(uow, datos=datos)
    assert primera.id == segunda.id
    assert (primera.origen, primera.importe, primera.expediente_id) == (
        "tramitador",
        "249.95",
        expediente,
    )
    assert primera.concepto == "Tasa por licencia de actividad; Tasa de publicación"
    async with runtime.unit_of_work(entidad.tenant, Actor.system("tramitador")) as uow:
        otra = await service.requerir_pago(
            uow, datos={**datos, "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-000000000002"}
        )
    assert otra.id != primera.id
    a_liquidar = {**datos["conceptos"][1], "concepto": "ICIO", "importe": None}  # type: ignore[dict-item]
    # What pagos cannot charge is answered, not only dead-lettered: the expediente hears why.
    for malo, codigo, motivo in (
        (
            {
                **datos,
                "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-000000000003",
                "conceptos": [datos["conceptos"][0], a_liquidar],  # type: ignore[index]
            },
            "importe-desconocido",
            "ICIO",
        ),
        (
            {
                **datos,
                "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-000000000004",
                "conceptos": [{"concepto": "X", "nombre": "X", "importe": 230.5}],
            },
            "requerimiento-no-valido",
            "coma flotante",
        ),
    ):
        async with runtime.unit_of_work(entidad.tenant, Actor.system("tramitador")) as uow:
            assert await service.requerir_pago(uow, datos=malo) is None
        async with runtime.db.engine.connect() as conn:
            rows = await conn.execute(
                select(kernel.outbox.c.envelope).where(
                    kernel.outbox.c.routing_key
                    == f"{entidad.tenant}.{service.REQUERIMIENTO_RECHAZADO}",
                    kernel.outbox.c.envelope["subject"].astext == malo["solicitud_id"],
                )
            )
            [rechazo] = [r.envelope["data"] for r in rows]
        runtime.contracts.validate(service.REQUERIMIENTO_RECHAZADO, rechazo)
        assert (rechazo["codigo"], rechazo["expediente_id"]) == (codigo, expediente)
        assert motivo in rechazo["motivo"]
        if codigo == "importe-desconocido":
            assert rechazo["conceptos"] == ["ICIO"]
    # Nothing names an expediente to answer: dead-lettered.
    with pytest.raises(PermanentFailure, match="expediente_id"):
        async with runtime.unit_of_work(entidad.tenant, Actor.system("tramitador")) as uow:
            await service.requerir_pago(
                uow,
                datos={
                    **datos,
                    "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-000000000005",
                    "expediente_id": None,
                },
            )
    nombres = [c.name for c in runtime.consumers]
    assert "requerimientos" in nombres and "documentos" in nombres
