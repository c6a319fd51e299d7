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


FALLIDA = "notificaciones.notificacion.fallida.v1"
RECHAZADO = "pagos.requerimiento.rechazado.v1"


async def _incidencia(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> dict[str, Any]:
    """The expediente's open incidencia, once it has one."""

    async def abierta() -> list[dict[str, Any]]:
        detalle = (await client.get(url, headers=headers)).json()
        return [i for i in detalle["incidencias"] if i["estado"] == "abierta"]

    (incidencia,) = await eventually(abierta, timeout=60)
    return incidencia


async def _en_bandeja(
    clients: dict[str, httpx.AsyncClient], tenant: str, token, unidad: str, expediente_id: str
) -> list[dict[str, Any]]:
    """The incidencia's trámites in the bandeja of a member of ``unidad``."""
    admin = bearer(token(tenant, "admin"))
    puesto = await clients["tramitador"].put(
        f"{T}/unidades/{unidad}/miembros", json={"usuarios": ["rosa"]}, headers=admin
    )
    assert puesto.status_code == 200, puesto.text
    rosa = bearer(token(tenant, "tramitador", sub="rosa"))
    bandeja = (await clients["tramitador"].get(f"{T}/bandeja", headers=rosa)).json()
    return [
        t
        for t in bandeja["items"]
        if t["expediente_id"] == expediente_id and t["codigo"] == "resolver-incidencia"
    ]


async def test_a_person_without_channel_data_is_an_incidencia_that_staff_resolve(
    clients: dict[str, httpx.AsyncClient], platform: Platform, new_tenant, token
) -> None:
    """A natural person who did not choose the electronic channel and gave no address
    cannot be notified: notificaciones answers fallida, the expediente records an
    incidencia (with a trámite in the unit's bandeja); staff give the channel data, the
    notification is asked again and the expediente goes on once it is practicada."""
    tenant = await new_tenant()
    events = await collect_events(
        platform.transport,
        f"{tenant}.tramitador.#",
        f"{tenant}.{FALLIDA}",
        f"{tenant}.{PRACTICADA}",
    )
    headers = bearer(token(tenant, "tramitador", "firma"))
    tramitador = clients["tramitador"]
    expediente_id = await open_by_asiento(clients, tenant, token, "generico")
    url = f"{T}/expedientes/{expediente_id}"
    await _hasta(tramitador, platform, tenant, headers, events, expediente_id, "notificacion")
    (primera,) = await eventually(
        lambda: [e for e in events if str(e.name) == NOTIFICACION_SOLICITAR], timeout=60
    )
    nif = primera.data["interesados"][0]["identificador"]
    (fallida,) = await eventually(lambda: [e for e in events if str(e.name) == FALLIDA], timeout=60)
    assert (fallida.data["codigo"], fallida.data["solicitud_id"]) == (
        "sin-datos-de-canal",
        primera.data["solicitud_id"],
    )
    incidencia = await _incidencia(tramitador, url, headers)
    assert (incidencia["origen"], incidencia["codigo"]) == ("notificacion", "sin-datos-de-canal")
    assert nif in incidencia["motivo"]
    assert incidencia["detalles"][0]["destinatario"]["identificador"] == nif
    detalle = (await tramitador.get(url, headers=headers)).json()
    assert detalle["fase"] == "notificacion"
    assert [h["accion"] for h in detalle["historial"]].count("incidencia") == 1
    [tramite] = await _en_bandeja(clients, tenant, token, "registro-general", expediente_id)
    assert tramite["nombre"].startswith("Resolver la incidencia")
    # The citizen sees no incidencias of the council's work.
    ciudadano = bearer(token(tenant, "ciudadano", sub="lucia", nif=nif))
    suyo = await tramitador.get(f"{T}/mis-expedientes/{expediente_id}", headers=ciudadano)
    assert suyo.status_code == 200 and suyo.json()["incidencias"] == []

    resolver = f"{url}/incidencias/{incidencia['id']}/resolver"
    ajeno = await tramitador.post(
        resolver, json={"interesados": [{"identificador": "00000000T"}]}, headers=headers
    )
    assert ajeno.status_code == 422
    assert ajeno.json()["errors"][0]["field"] == "interesados[0].identificador"
    otro_tenant = await new_tenant()
    oculto = await tramitador.post(
        resolver, json={}, headers=bearer(token(otro_tenant, "tramitador"))
    )
    assert oculto.status_code == 404
    resuelta = await tramitador.post(
        resolver,
        json={
            "interesados": [
                {"identificador": nif, "eligio_electronico": True, "email": "lucia@example.org"}
            ],
            "motivo": "Comparece y elige la notificación electrónica",
        },
        headers=headers,
    )
    assert resuelta.status_code == 200, resuelta.text
    assert [i["estado"] for i in resuelta.json()["incidencias"]] == ["resuelta"]
    assert await _en_bandeja(clients, tenant, token, "registro-general", expediente_id) == []
    otra_vez = await tramitador.post(resolver, json={}, headers=headers)
    assert otra_vez.status_code == 409

    # Asked again, with the channel: put at disposal, opened, and the expediente goes on.
    solicitudes = await eventually(
        lambda: [e for e in events if str(e.name) == NOTIFICACION_SOLICITAR][1:]
    )
    assert solicitudes[0].data["interesados"][0]["eligio_electronico"] is True
    assert solicitudes[0].data["documento"] == primera.data["documento"]

    async def mias() -> list[dict[str, Any]]:
        r = await clients["notificaciones"].get("/api/v1/notificaciones/mias", headers=ciudadano)
        return [n for n in r.json() if n["estado"] == "puesta_disposicion"]

    (notificacion,) = await eventually(mias, timeout=30)
    abierta = await clients["notificaciones"].post(
        f"/api/v1/notificaciones/{notificacion['id']}/acceder", headers=ciudadano
    )
    assert abierta.status_code == 200, abierta.text

    async def despues_de_notificar() -> bool:
        return (await tramitador.get(url, headers=headers)).json()["fase"] != "notificacion"

    await eventually(despues_de_notificar)
    assert len([e for e in events if str(e.name) == FALLIDA]) == 1


async def test_a_fee_without_importe_is_an_incidencia_until_staff_assess_it(
    clients: dict[str, httpx.AsyncClient], platform: Platform, new_tenant, token
) -> None:
    """Obras menores' ICIO has no fixed importe: pagos answers requerimiento.rechazado,
    the expediente records an incidencia; staff give the ICIO and pagos issues the
    liquidación of both fees."""
    entidad = await configurar(clients["pagos"], lambda: new_tenant(), token, nif=CIF)
    tenant = entidad.tenant
    events = await collect_events(
        platform.transport, f"{tenant}.tramitador.#", f"{tenant}.{RECHAZADO}"
    )
    headers = bearer(token(tenant, "tramitador", "firma"))
    tramitador = clients["tramitador"]
    expediente_id = await open_by_asiento(
        clients,
        tenant,
        token,
        "obras-menores",
        tipo_identificador="CIF",
        identificador=CIF,
        nombre="Reformas Levante SL",
        apellido1=None,
    )
    url = f"{T}/expedientes/{expediente_id}"
    await tramitador.post(f"{url}/acciones/requerir-subsanacion", headers=headers)
    subsanado = await tramitador.post(
        f"{url}/acciones/subsanar",
        json={"documentos": ["presupuesto-obra", "croquis"]},
        headers=headers,
    )
    assert subsanado.status_code == 200, subsanado.text
    admitido = await tramitador.post(f"{url}/acciones/admitir", headers=headers)
    assert admitido.status_code == 200 and admitido.json()["fase"] == "pago", admitido.text
    (rechazo,) = await eventually(
        lambda: [e for e in events if str(e.name) == RECHAZADO], timeout=60
    )
    assert (rechazo.data["codigo"], rechazo.data["conceptos"]) == ("importe-desconocido", ["icio"])
    incidencia = await _incidencia(tramitador, url, headers)
    assert (incidencia["origen"], incidencia["codigo"]) == ("pago", "importe-desconocido")
    [tramite] = await _en_bandeja(clients, tenant, token, "urbanismo", expediente_id)
    assert tramite["fase"] == "pago"

    resolver = f"{url}/incidencias/{incidencia['id']}/resolver"
    sin_importe = await tramitador.post(resolver, json={}, headers=headers)
    assert sin_importe.status_code == 422
    assert [e["field"] for e in sin_importe.json()["errors"]] == ["importes.icio"]
    mal = await tramitador.post(resolver, json={"importes": {"icio": "312,40"}}, headers=headers)
    assert mal.status_code == 422 and "importes" in mal.text
    resuelta = await tramitador.post(
        resolver, json={"importes": {"icio": "312.4"}}, headers=headers
    )
    assert resuelta.status_code == 200, resuelta.text
    assert resuelta.json()["fase"] == "pago"

    async def emitidas() -> list[dict[str, Any]]:
        r = await clients["pagos"].get(
            "/api/v1/pagos/liquidaciones",
            params={"expediente_id": expediente_id},
            headers=entidad.staff,
        )
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    (liquidacion,) = await eventually(emitidas, timeout=30)
    assert (liquidacion["importe"], liquidacion["estado"]) == ("352.40", "pendiente")
    comandos = [e for e in events if str(e.name) == PAGO_REQUERIR]
    assert [c["importe"] for c in comandos[-1].data["conceptos"]] == ["312.40", "40.00"]
    assert len([e for e in events if str(e.name) == RECHAZADO]) == 1
