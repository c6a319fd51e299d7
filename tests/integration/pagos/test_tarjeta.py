"""Card payment through the Redsys simulator, on real PostgreSQL: the signed form, the
notification applied once (replayed or concurrent), denied, tampered, wrong-amount and
unknown-order notifications."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.pagos import redsys
from services.pagos.simulador import TARJETA_AUTORIZADA, crear_simulador, notificacion_firmada
from tests.support.pagos import CLAVE_PRUEBAS, Entidad, configurar, liquidacion
from tests.support.platforms import asgi_client, collect_events, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BASE = "/api/v1/pagos"
NOTIFICACION = f"{BASE}/redsys/notificacion"
DENEGADA = "4012001037141112"


class _ComoLaPasarela(httpx.AsyncBaseTransport):
    """Forwards the public notification path to the service, as the gateway does."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/pagos/redsys/notificacion":
            request.url = request.url.copy_with(path=NOTIFICACION)
        return await self._asgi.handle_async_request(request)


@pytest.fixture
async def banco(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """The Redsys simulator, delivering its notifications to the pagos app in process."""
    pasarela = httpx.AsyncClient(transport=_ComoLaPasarela(platform.apps["pagos"]))
    simulador = crear_simulador(cliente=pasarela)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=simulador), base_url="http://redsys"
    ) as c:
        yield c
    await pasarela.aclose()


@pytest.fixture
async def entidad(
    client: httpx.AsyncClient, new_tenant: Callable[..., Any], token: Callable[..., str]
) -> Entidad:
    return await configurar(client, new_tenant, token, redsys_url="http://redsys/sis/realizarPago")


async def _formulario(client: httpx.AsyncClient, entidad: Entidad, liquidacion_id: str) -> Any:
    respuesta = await client.post(
        f"{BASE}/liquidaciones/{liquidacion_id}/pago-tarjeta", headers=entidad.ciudadano
    )
    assert respuesta.status_code == 201, respuesta.text
    return respuesta.json()


def _peticion(formulario: dict[str, str]) -> dict[str, Any]:
    datos: dict[str, Any] = json.loads(base64.b64decode(formulario["Ds_MerchantParameters"]))
    return datos


def _campos(formulario: dict[str, str]) -> dict[str, str]:
    return {
        k: formulario[k] for k in ("Ds_SignatureVersion", "Ds_MerchantParameters", "Ds_Signature")
    }


async def _estado(client: httpx.AsyncClient, entidad: Entidad, liquidacion_id: str) -> Any:
    return (
        await client.get(f"{BASE}/liquidaciones/{liquidacion_id}", headers=entidad.staff)
    ).json()


async def _completados(platform: Platform, tenant: str, liquidacion_id: str) -> int:
    async with tenant_transaction(platform.runtimes["pagos"].db, tenant) as session:
        return int(
            (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pagos.outbox WHERE tenant_id = :t AND "
                        "routing_key LIKE '%pagos.pago.completado.v1' AND "
                        "envelope -> 'data' ->> 'liquidacion_id' = :l"
                    ),
                    {"t": tenant, "l": liquidacion_id},
                )
            ).scalar_one()
        )


async def test_the_form_is_signed_as_redsys_expects(
    client: httpx.AsyncClient, entidad: Entidad, settings: Settings
) -> None:
    datos = await liquidacion(client, entidad, importe="159.00")
    formulario = await _formulario(client, entidad, datos["id"])
    assert formulario["url"] == "http://redsys/sis/realizarPago"
    assert formulario["Ds_SignatureVersion"] == "HMAC_SHA256_V1"
    peticion = _peticion(formulario)
    assert peticion["Ds_Merchant_Amount"] == "15900"
    assert peticion["Ds_Merchant_Currency"] == "978"
    assert peticion["Ds_Merchant_TransactionType"] == "0"
    assert peticion["Ds_Merchant_MerchantCode"] == "999008881"
    assert peticion["Ds_Merchant_Terminal"] == "001"
    assert peticion["Ds_Merchant_MerchantURL"].endswith("/pagos/redsys/notificacion")
    orden = peticion["Ds_Merchant_Order"]
    assert orden == formulario["orden"] and redsys.orden_valida(orden) and len(orden) == 12
    assert formulario["Ds_Signature"] == redsys.firmar(
        CLAVE_PRUEBAS, orden, formulario["Ds_MerchantParameters"]
    )
    otro = await _formulario(client, entidad, datos["id"])
    assert otro["orden"] != orden  # one order number per attempt


async def test_pay_by_card_through_the_simulator(
    client: httpx.AsyncClient, banco: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    eventos = await collect_events(platform.transport, f"{entidad.tenant}.pagos.pago.completado.v1")
    datos = await liquidacion(client, entidad)
    formulario = await _formulario(client, entidad, datos["id"])
    pagina = await banco.post("/sis/realizarPago", data=_campos(formulario))
    assert pagina.status_code == 200 and formulario["orden"] in pagina.text
    vuelta = await banco.post(
        "/sis/confirmar", data={**_campos(formulario), "tarjeta": TARJETA_AUTORIZADA}
    )
    assert vuelta.status_code == 303
    destino = httpx.URL(vuelta.headers["location"])
    assert destino.path == "/pagos/redsys/vuelta"
    # The page the browser lands on shows the liquidación as stored: paid.
    pagina_vuelta = await client.get(f"{BASE}/redsys/vuelta", params=destino.params)
    assert pagina_vuelta.status_code == 200
    assert 'data-estado="pagada"' in pagina_vuelta.text
    assert datos["numero"] in pagina_vuelta.text
    alterada = dict(destino.params)
    alterada["Ds_Signature"] = redsys.firmar(CLAVE_PRUEBAS, "0001", "eA==")
    assert (await client.get(f"{BASE}/redsys/vuelta", params=alterada)).status_code == 400
    pagada = await _estado(client, entidad, datos["id"])
    assert pagada["estado"] == "pagada"
    assert pagada["canal"] == "tarjeta"
    assert pagada["justificante_pago"] == formulario["orden"]
    recibido = (await eventually(lambda: eventos))[0].data
    assert (recibido["liquidacion_id"], recibido["importe"], recibido["canal"]) == (
        datos["id"],
        "159.00",
        "tarjeta",
    )
    # Paid: no new attempt can be opened.
    otra = await client.post(
        f"{BASE}/liquidaciones/{datos['id']}/pago-tarjeta", headers=entidad.ciudadano
    )
    assert otra.status_code == 409


async def test_a_denied_card_leaves_it_payable(
    client: httpx.AsyncClient, banco: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    fallidos = await collect_events(platform.transport, f"{entidad.tenant}.pagos.pago.fallido.v1")
    datos = await liquidacion(client, entidad)
    formulario = await _formulario(client, entidad, datos["id"])
    vuelta = await banco.post("/sis/confirmar", data={**_campos(formulario), "tarjeta": DENEGADA})
    assert vuelta.status_code == 303
    assert (await _estado(client, entidad, datos["id"]))["estado"] == "pendiente"
    fallido = (await eventually(lambda: fallidos))[0].data
    assert (fallido["orden"], fallido["codigo_respuesta"]) == (formulario["orden"], "0190")
    segundo = await _formulario(client, entidad, datos["id"])
    await banco.post("/sis/confirmar", data={**_campos(segundo), "tarjeta": TARJETA_AUTORIZADA})
    assert (await _estado(client, entidad, datos["id"]))["estado"] == "pagada"


async def test_the_simulator_refuses_a_badly_signed_form(
    client: httpx.AsyncClient, banco: httpx.AsyncClient, entidad: Entidad
) -> None:
    datos = await liquidacion(client, entidad)
    formulario = await _formulario(client, entidad, datos["id"])
    campos = {**_campos(formulario), "Ds_Signature": redsys.firmar(CLAVE_PRUEBAS, "9999", "x")}
    pagina = await banco.post("/sis/realizarPago", data=campos)
    assert "SIS0042" in pagina.text


async def test_tampered_and_wrong_notifications_change_nothing(
    client: httpx.AsyncClient,
    platform: Platform,
    entidad: Entidad,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    datos = await liquidacion(client, entidad)
    formulario = await _formulario(client, entidad, datos["id"])
    peticion = _peticion(formulario)
    buena = notificacion_firmada(CLAVE_PRUEBAS, peticion, "0000")
    # Tampered: the amount changed after signing.
    parametros = json.loads(base64.b64decode(buena["Ds_MerchantParameters"]))
    alterada = {
        **buena,
        "Ds_MerchantParameters": redsys.codificar_parametros({**parametros, "Ds_Amount": "1"}),
    }
    respuesta = await client.post(NOTIFICACION, data=alterada)
    assert respuesta.status_code == 400
    assert respuesta.headers["content-type"].startswith("application/problem+json")
    # Signed with another key.
    ajena = notificacion_firmada("Mk9m98IfEblmPfrpsawt7BmxObt98Jev", peticion, "0000")
    assert (await client.post(NOTIFICACION, data=ajena)).status_code == 400
    # Well signed, but for another amount than the attempt's.
    otro_importe = notificacion_firmada(
        CLAVE_PRUEBAS, {**peticion, "Ds_Merchant_Amount": "100"}, "0000"
    )
    assert (await client.post(NOTIFICACION, data=otro_importe)).status_code == 400
    # An order nobody opened.
    desconocida = notificacion_firmada(
        CLAVE_PRUEBAS, {**peticion, "Ds_Merchant_Order": "999999999999"}, "0000"
    )
    respuesta = await client.post(NOTIFICACION, data=desconocida)
    assert respuesta.status_code == 404
    assert "999999999999" in respuesta.json()["detail"]
    # Missing fields and garbage are 4xx too.
    assert (await client.post(NOTIFICACION, data={"Ds_Signature": "x"})).status_code == 422
    basura = {**buena, "Ds_MerchantParameters": "no-es-base64!"}
    assert (await client.post(NOTIFICACION, data=basura)).status_code == 400
    assert (await _estado(client, entidad, datos["id"]))["estado"] == "pendiente"
    assert await _completados(platform, entidad.tenant, datos["id"]) == 0
    assert CLAVE_PRUEBAS not in caplog.text
    assert "refused" in caplog.text
    # The genuine one still applies afterwards.
    assert (await client.post(NOTIFICACION, data=buena)).json()["resultado"] == "aplicada"


async def test_a_replayed_notification_is_applied_once(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    datos = await liquidacion(client, entidad)
    formulario = await _formulario(client, entidad, datos["id"])
    campos = notificacion_firmada(CLAVE_PRUEBAS, _peticion(formulario), "0000")
    primera = await client.post(NOTIFICACION, data=campos)
    segunda = await client.post(NOTIFICACION, data=campos)
    assert (primera.status_code, segunda.status_code) == (200, 200)
    assert (primera.json()["resultado"], segunda.json()["resultado"]) == ("aplicada", "repetida")
    assert await _completados(platform, entidad.tenant, datos["id"]) == 1


async def test_concurrent_notifications_for_one_order_apply_once(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    datos = await liquidacion(client, entidad)
    formulario = await _formulario(client, entidad, datos["id"])
    campos = notificacion_firmada(CLAVE_PRUEBAS, _peticion(formulario), "0000")
    respuestas = await asyncio.gather(*(client.post(NOTIFICACION, data=campos) for _ in range(8)))
    resultados = sorted(r.json()["resultado"] for r in respuestas)
    assert resultados == ["aplicada"] + ["repetida"] * 7
    assert await _completados(platform, entidad.tenant, datos["id"]) == 1


async def test_two_attempts_authorised_at_once_pay_once(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    datos = await liquidacion(client, entidad)
    primero = await _formulario(client, entidad, datos["id"])
    segundo = await _formulario(client, entidad, datos["id"])
    respuestas = await asyncio.gather(
        *(
            client.post(
                NOTIFICACION, data=notificacion_firmada(CLAVE_PRUEBAS, _peticion(f), "0000")
            )
            for f in (primero, segundo)
        )
    )
    assert sorted(r.json()["resultado"] for r in respuestas) == ["aplicada", "duplicada"]
    assert await _completados(platform, entidad.tenant, datos["id"]) == 1


async def test_make_dev_serves_the_simulator_and_production_does_not(
    settings: Settings, new_tenant: Callable[..., Any], token: Callable[..., str]
) -> None:
    desarrollo = settings.model_copy(update={"environment": "development"})
    async with running_platform(desarrollo, ["pagos"]) as dev, asgi_client(dev.apps["pagos"]) as c:
        entidad = await configurar(
            c, new_tenant, token, redsys_url="http://x/simulador-redsys/sis/realizarPago"
        )
        datos = await liquidacion(c, entidad)
        formulario = await _formulario(c, entidad, datos["id"])
        pagina = await c.post(f"{BASE}/simulador-redsys/sis/realizarPago", data=_campos(formulario))
        assert pagina.status_code == 200 and formulario["orden"] in pagina.text
    async with running_platform(settings, ["pagos"]) as otro, asgi_client(otro.apps["pagos"]) as c:
        fuera = await c.post(f"{BASE}/simulador-redsys/sis/realizarPago", data={})
        assert fuera.status_code == 404
