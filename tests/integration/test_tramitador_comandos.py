"""The tramitador's commands answered by the real services, on real PostgreSQL and the
in-process bus: a licencia de vado reaches its payment phase, pagos issues the
liquidación from ``tramitador.pago.requerir.v1``, a Cuaderno 60 cobros file pays it
and the expediente moves on; its resolution, issued by the real repositorio with CSV
and seal, is notified by notificaciones from ``tramitador.notificacion.solicitar.v1``
(after asking the repositorio that it exists), the interesado opens it, downloads it by
its CSV, and the expediente moves on again. And what cannot be notified or charged
becomes an incidencia that staff resolve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.bootstrap import Platform
from services.common.bus.envelope import ReceivedEvent
from services.common.settings import Settings
from tests.integration.test_tramitador_motor import T, open_by_asiento, step
from tests.support.pagos import configurar, fichero_cobros, linea_cobro
from tests.support.platforms import asgi_client, bearer, collect_events, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PAGO_REQUERIR = "tramitador.pago.requerir.v1"
NOTIFICACION_SOLICITAR = "tramitador.notificacion.solicitar.v1"
COMPLETADO = "pagos.pago.completado.v1"
PRACTICADA = "notificaciones.notificacion.practicada.v1"
# A company: obliged to the electronic channel (art. 14.2), so notified electronically.
CIF = "B12345674"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(
        settings,
        ["registro", "tramitador", "pagos", "notificaciones", "repositorio", "csv", "sellado"],
    ) as built:
        yield built


@pytest.fixture
async def clients(platform: Platform) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with (
        asgi_client(platform.apps["registro"]) as registro,
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["pagos"]) as pagos,
        asgi_client(platform.apps["notificaciones"]) as notificaciones,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        yield {
            "registro": registro,
            "tramitador": tramitador,
            "pagos": pagos,
            "notificaciones": notificaciones,
            "repositorio": repositorio,
        }


async def _hasta(
    client: httpx.AsyncClient,
    platform: Platform,
    tenant: str,
    headers: dict[str, str],
    events: list[ReceivedEvent],
    expediente_id: str,
    fase: str,
) -> None:
    """Takes the expediente through the preferred actions until it waits in ``fase``."""
    url = f"{T}/expedientes/{expediente_id}"
    for _ in range(20):
        detalle = (await client.get(url, headers=headers)).json()
        if detalle["fase"] == fase:
            return
        await step(client, headers, detalle)
    raise AssertionError(f"never reached {fase}")


async def test_a_fee_and_a_resolution_answered_by_pagos_and_notificaciones(
    clients: dict[str, httpx.AsyncClient], platform: Platform, new_tenant, token
) -> None:
    entidad = await configurar(clients["pagos"], lambda: new_tenant(), token, nif=CIF)
    tenant = entidad.tenant
    # The repositorio issues the documents for real: the test answers no emitir command.
    events = await collect_events(
        platform.transport,
        f"{tenant}.tramitador.#",
        f"{tenant}.{COMPLETADO}",
        f"{tenant}.{PRACTICADA}",
    )
    headers = bearer(token(tenant, "tramitador", "firma"))
    tramitador = clients["tramitador"]
    expediente_id = await open_by_asiento(
        clients,
        tenant,
        token,
        "licencia-vado",
        tipo_identificador="CIF",
        identificador=CIF,
        nombre="Garajes del Sur SL",
        apellido1=None,
    )
    url = f"{T}/expedientes/{expediente_id}"
    # Admission needs the documents the asiento lacked (a plano de acceso): subsanación.
    await tramitador.post(f"{url}/acciones/requerir-subsanacion", headers=headers)
    subsanado = await tramitador.post(
        f"{url}/acciones/subsanar",
        json={"documentos": ["solicitud", "plano-acceso"]},
        headers=headers,
    )
    assert subsanado.status_code == 200, subsanado.text

    # The payment phase: pagos issues the liquidación of the real command, once.
    await _hasta(tramitador, platform, tenant, headers, events, expediente_id, "pago")
    comando = (await eventually(lambda: [e for e in events if str(e.name) == PAGO_REQUERIR]))[0]

    async def emitidas() -> list[dict[str, Any]]:
        r = await clients["pagos"].get(
            "/api/v1/pagos/liquidaciones",
            params={"expediente_id": expediente_id},
            headers=entidad.staff,
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    (liquidacion,) = await eventually(emitidas)
    assert (liquidacion["origen"], liquidacion["importe"], liquidacion["estado"]) == (
        "tramitador",
        "95.00",
        "pendiente",
    )
    assert liquidacion["obligado"]["identificador"] == CIF
    assert liquidacion["concepto"] == comando.data["conceptos"][0]["nombre"]

    # The bank's cobros file pays it; pago.completado answers the tramitador's solicitud.
    linea = linea_cobro(
        emisora=liquidacion["emisora"],
        referencia=liquidacion["referencia"],
        identificacion=liquidacion["identificacion"],
        importe=9500,
        nrc="V" * 22,
    )
    importado = await clients["pagos"].post(
        "/api/v1/pagos/cobros",
        headers={**entidad.staff, "Content-Type": "text/plain; charset=iso-8859-1"},
        content=fichero_cobros(liquidacion["emisora"], [linea]).encode("latin-1"),
    )
    assert importado.status_code == 200, importado.text
    assert [a["liquidacion_id"] for a in importado.json()["aplicados"]] == [liquidacion["id"]]
    (pagado,) = await eventually(lambda: [e for e in events if str(e.name) == COMPLETADO])
    assert (
        pagado.data["solicitud_id"],
        pagado.data["solicitante"],
        pagado.data["expediente_id"],
    ) == (comando.data["solicitud_id"], "tramitador", expediente_id)

    async def despues_del_pago() -> bool:
        return (await tramitador.get(url, headers=headers)).json()["fase"] != "pago"

    await eventually(despues_del_pago)
    assert len(await emitidas()) == 1

    # The resolution, once issued, is notified by notificaciones from the real command.
    await _hasta(tramitador, platform, tenant, headers, events, expediente_id, "notificacion")
    (solicitud,) = await eventually(
        lambda: [e for e in events if str(e.name) == NOTIFICACION_SOLICITAR], timeout=60
    )
    ciudadano = bearer(token(tenant, "ciudadano", sub="garajes", nif=CIF))

    async def mias() -> list[dict[str, Any]]:
        r = await clients["notificaciones"].get("/api/v1/notificaciones/mias", headers=ciudadano)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()
        return items

    (notificacion,) = await eventually(mias)
    assert notificacion["concepto"] == solicitud.data["asunto"]
    abierta = await clients["notificaciones"].post(
        f"/api/v1/notificaciones/{notificacion['id']}/acceder", headers=ciudadano
    )
    assert abierta.status_code == 200, abierta.text
    # Opened, the document can be downloaded by its CSV: the very PDF the repositorio issued.
    documento = abierta.json()["documento"]
    assert documento["documento_id"] == solicitud.data["documento"]["documento_id"]
    assert documento["descarga"] == f"{documento['url_verificacion']}/documento"
    assert documento["url_verificacion"].endswith(f"/verificar/{documento['csv']}")
    pdf = await clients["repositorio"].get(
        f"/api/v1/documentos/verificar/{documento['csv']}/documento"
    )
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    (practicada,) = await eventually(lambda: [e for e in events if str(e.name) == PRACTICADA])
    assert (practicada.data["solicitud_id"], practicada.data["expediente_id"]) == (
        solicitud.data["solicitud_id"],
        expediente_id,
    )
    assert practicada.data["documento_id"] == solicitud.data["documento"]["documento_id"]

    async def despues_de_notificar() -> bool:
        return (await tramitador.get(url, headers=headers)).json()["fase"] != "notificacion"

    await eventually(despues_de_notificar)
