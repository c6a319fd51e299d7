"""The engine on real PostgreSQL and the in-process bus: every seeded procedure walked
from start to resolution and archive, the guards of the law, subsanación suspending
the resolution plazo, the scheduler acting once at expiry with two replicas, answers
of other services, tenant isolation and the citizen's own expedientes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from services.bootstrap import Platform
from services.common.bus.envelope import EventName, ReceivedEvent, build_envelope
from services.common.bus.transport import OutgoingMessage
from services.common.db import Database, tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.tramitador.expedientes import service as expedientes
from services.tramitador.expedientes.scheduler import Programador
from tests.integration.test_tramitador_calendario import tenant_in_province
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, collect_events, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

# What pagos publishes when a liquidación is paid (the fields besides the correlation).
_PAGADA = {
    "liquidacion_id": "0195a3e1-5c2d-7a4b-9e10-3f4a5b6c7d8e",
    "referencia": "260000004293",
    "importe": "95.00",
    "canal": "tarjeta",
    "justificante": "260000004293-0001",
    "pagado_en": "2026-03-05T12:00:00+01:00",
}

# What notificaciones publishes when the interesado opens the notification.
_PRACTICADA = {
    "notificacion_id": "0195a3e1-5c2d-7a4b-9e10-3f4a5b6c7d8f",
    "documento_id": "0195a3e1-5c2d-7a4b-9e10-3f4a5b6c7d90",
    "canal": "electronico",
    "destinatario": {"tipo_identificador": "NIF", "identificador": "12345678Z"},
    "fecha": "2026-05-21T09:30:00+02:00",
    "fecha_legal": "2026-05-21",
    "via": "acceso",
}

T = "/api/v1/tramitador"
PAGO_REQUERIR = "tramitador.pago.requerir.v1"
NOTIFICACION_SOLICITAR = "tramitador.notificacion.solicitar.v1"
RESOLUCION = "tramitador.resolucion.dictada.v1"
EMITIR = "repositorio.documento.emitir.v1"
# The path a walk prefers, with the data each action needs.
PLAN: list[tuple[str, dict[str, Any]]] = [
    ("admitir", {}),
    ("acordar-inicio", {}),
    ("emitir-informe", {"sentido": "favorable", "motivo": "Conforme a la ordenanza"}),
    ("abrir-audiencia", {}),
    ("cerrar-audiencia", {"renuncia": True}),
    ("concluir-instruccion", {}),
    ("formular-propuesta", {"sentido": "estimatoria"}),
    ("resolver", {}),
    ("archivar", {}),
]


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro", "tramitador"]) as built:
        yield built


@pytest.fixture
async def clients(platform: Platform) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with (
        asgi_client(platform.apps["registro"]) as registro,
        asgi_client(platform.apps["tramitador"]) as tramitador,
    ):
        yield {"registro": registro, "tramitador": tramitador}


async def publish(platform: Platform, tenant: str, name: str, data: dict[str, Any]) -> None:
    """Publishes an event as the service that owns it would (pagos, notificaciones)."""
    event = build_envelope(
        EventName.parse(name),
        tenant=tenant,
        data=data,
        dataschema=platform.contracts.schema_uri(name),
    )
    await platform.transport.publish(
        OutgoingMessage(
            routing_key=f"{tenant}.{name}", body=json.dumps(event).encode(), message_id=event["id"]
        )
    )


async def open_by_asiento(
    clients: dict[str, httpx.AsyncClient], tenant: str, token, codigo: str, **interesado: Any
) -> str:
    body = factories.asiento(procedimiento=codigo, interesados=[factories.interesado(**interesado)])
    created = await clients["registro"].post(
        "/api/v1/registro/asientos", json=body, headers=bearer(token(tenant, "registro"))
    )
    assert created.status_code == 201, created.text
    headers = bearer(token(tenant, "tramitador"))

    async def opened() -> list[dict[str, Any]]:
        r = await clients["tramitador"].get(
            f"{T}/expedientes", params={"asiento_id": created.json()["id"]}, headers=headers
        )
        return r.json()["items"]

    return str((await eventually(opened))[0]["id"])


async def open_de_oficio(client: httpx.AsyncClient, tenant: str, token, codigo: str) -> str:
    body = {
        "procedimiento": codigo,
        "asunto": f"Expediente de oficio de {codigo}",
        "interesados": [factories.interesado()],
    }
    created = await client.post(
        f"{T}/expedientes", json=body, headers=bearer(token(tenant, "tramitador"))
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(created.json()["id"])
    return str(created.json()["id"])


async def issue_documents(
    platform: Platform, tenant: str, events: list[ReceivedEvent], answered: set[str]
) -> int:
    """Answers every emitir command not answered yet, as the repositorio does once it has
    stamped the CSV and sealed the PDF."""
    hechos = 0
    for event in [
        e for e in events if str(e.name) == EMITIR and e.data["solicitante"] == "tramitador"
    ]:
        data = event.data
        if data["solicitud_id"] in answered:
            continue
        answered.add(data["solicitud_id"])
        pdf = base64.b64decode(data["pdf"])
        assert pdf.startswith(b"%PDF-")
        await publish(
            platform,
            tenant,
            "repositorio.documento.emitido.v1",
            {
                "documento_id": str(uuid.uuid4()),
                "version": 2,
                "csv": "ZXANZ-NR454-H4FLR-KGPBW-P4ZXR",
                "url_verificacion": "https://sede.example/verificar/ZXANZ-NR454-H4FLR-KGPBW-P4ZXR",
                "sha256": hashlib.sha256(pdf).hexdigest(),
                "tamano": len(pdf),
                "nombre_fichero": data["nombre_fichero"],
                "identificador": "ES_L01000000_2026_0000003DKPK2RM7WQ4XH9TBZCN5FJV",
                "tipo_documental": data["metadatos"]["tipo_documental"],
                "organo": data["metadatos"]["organo"],
                "emitido_en": "2026-03-02T10:41:05.236+01:00",
                "firmante": "Sello electrónico de prueba",
                "sello_tiempo": "2026-03-02T09:41:05.201Z",
                "solicitud_id": data["solicitud_id"],
                "solicitante": data["solicitante"],
            },
        )
        hechos += 1
    return hechos


def _for(events: list[ReceivedEvent], name: str, expediente_id: str) -> list[ReceivedEvent]:
    return [e for e in events if str(e.name) == name and e.data["expediente_id"] == expediente_id]


async def answer(
    platform: Platform,
    tenant: str,
    events: list[ReceivedEvent],
    command: str,
    reply: str,
    expediente_id: str,
    extra: dict[str, Any],
) -> None:
    """Answers the latest command for the expediente, as the later service will."""
    sent = await eventually(lambda: _for(events, command, expediente_id))
    data = sent[-1].data
    await publish(
        platform,
        tenant,
        reply,
        {
            "solicitud_id": data["solicitud_id"],
            "solicitante": data["solicitante"],
            "expediente_id": expediente_id,
            **extra,
        },
    )


async def walk(
    client: httpx.AsyncClient,
    platform: Platform,
    tenant: str,
    headers: dict[str, str],
    events: list[ReceivedEvent],
    expediente_id: str,
) -> list[str]:
    """Takes the expediente from where it is to the archive; answers payments and
    notifications; returns the actions taken."""
    url = f"{T}/expedientes/{expediente_id}"
    taken: list[str] = []
    answered: set[str] = set()
    for _ in range(40):
        await issue_documents(platform, tenant, events, answered)
        detalle = (await client.get(url, headers=headers)).json()
        fase = detalle["fase"]
        if detalle["estado"] == "archivado":
            return taken
        if fase in ("pago", "notificacion"):
            if fase == "pago":
                await answer(
                    platform,
                    tenant,
                    events,
                    PAGO_REQUERIR,
                    "pagos.pago.completado.v1",
                    expediente_id,
                    _PAGADA,
                )
            else:
                # The resolution is notified once issued: answer the repositorio first.
                async def notified() -> list[ReceivedEvent]:
                    await issue_documents(platform, tenant, events, answered)
                    return _for(events, NOTIFICACION_SOLICITAR, expediente_id)

                await eventually(notified)
                await answer(
                    platform,
                    tenant,
                    events,
                    NOTIFICACION_SOLICITAR,
                    "notificaciones.notificacion.practicada.v1",
                    expediente_id,
                    _PRACTICADA,
                )

            async def moved(fase: str = fase) -> bool:
                return (await client.get(url, headers=headers)).json()["fase"] != fase

            await eventually(moved)
            taken.append(f"({fase})")
            continue
        taken.append(await step(client, headers, detalle))
    raise AssertionError(f"not archived after 40 steps: {taken}")


async def step(client: httpx.AsyncClient, headers: dict[str, str], detalle: dict[str, Any]) -> str:
    """Takes the first action of PLAN the expediente offers; returns its code."""
    acciones = {a["codigo"]: a for a in detalle["acciones"]}
    for codigo, body in PLAN:
        accion = acciones.get(codigo)
        # The interesados' renuncia (art. 82.3) ends an audiencia before its plazo.
        if accion is None or (accion["condiciones_pendientes"] and not body.get("renuncia")):
            continue
        if accion["sentidos"] and "sentido" not in body:
            body = {"sentido": accion["sentidos"][0]}
        response = await client.post(
            f"{T}/expedientes/{detalle['id']}/acciones/{codigo}", json=body, headers=headers
        )
        assert response.status_code == 200, response.text
        return codigo
    raise AssertionError(f"nothing to do in {detalle['fase']}: {detalle['acciones']}")


async def test_every_seeded_procedure_walks_from_start_to_archive(
    clients, platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "tramitador", "firma"))
    events = await collect_events(
        platform.transport, f"{tenant}.tramitador.#", f"{tenant}.{EMITIR}"
    )
    client = clients["tramitador"]
    catalogue = (await client.get(f"{T}/procedimientos", headers=headers)).json()["items"]
    assert len(catalogue) == 20
    for procedimiento in catalogue:
        codigo = procedimiento["codigo"]
        if "solicitud" in procedimiento["iniciacion"]:
            expediente_id = await open_by_asiento(clients, tenant, token, codigo)
        else:
            expediente_id = await open_de_oficio(client, tenant, token, codigo)
        definicion = (
            await client.get(f"{T}/procedimientos/{codigo}/versiones/1", headers=headers)
        ).json()["definicion"]
        requeridos = [d["codigo"] for d in definicion["documentos_requeridos"] if d["obligatorio"]]
        url = f"{T}/expedientes/{expediente_id}"
        if set(requeridos) - {"solicitud"}:
            # Admission needs the documents the asiento lacked: subsanación first.
            blocked = await client.post(f"{url}/acciones/admitir", headers=headers)
            assert blocked.status_code == 409, codigo
            assert "documentos-requeridos" in blocked.json()["detail"]
            await client.post(f"{url}/acciones/requerir-subsanacion", headers=headers)
            done = await client.post(
                f"{url}/acciones/subsanar", json={"documentos": requeridos}, headers=headers
            )
            assert done.status_code == 200, done.text
        taken = await walk(client, platform, tenant, headers, events, expediente_id)
        detalle = (await client.get(url, headers=headers)).json()
        assert detalle["estado"] == "archivado", codigo
        resolver = next(a for a in definicion["flujo"]["acciones"] if a["codigo"] == "resolver")
        assert detalle["resolucion"] == resolver["sentidos"][0], codigo
        assert "resolver" in taken and "archivar" in taken, (codigo, taken)
        assert ("(pago)" in taken) == bool(definicion["tasas"]), codigo
        assert [h["accion"] for h in detalle["historial"]][0] == "iniciar"
        assert detalle["historial"][-1]["fase_hacia"] == "archivo"
        assert len(_for(events, RESOLUCION, expediente_id)) == 1, codigo
        emitidos = [d for d in detalle["documentos"] if d["estado"] == "emitido"]
        assert "resolucion" in {d["plantilla"] for d in emitidos}, codigo
        assert all(d["csv"] for d in emitidos)
        [notificacion] = _for(events, NOTIFICACION_SOLICITAR, expediente_id)
        resolucion_doc = next(d for d in emitidos if d["plantilla"] == "resolucion")
        assert notificacion.data["documento"]["documento_id"] == resolucion_doc["documento_id"]


async def test_guards_answer_409_naming_the_condition(clients, new_tenant, token) -> None:
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador", "firma"))
    expediente_id = await open_by_asiento(clients, tenant, token, "licencia-vado")
    url = f"{T}/expedientes/{expediente_id}"
    detalle = (await client.get(url, headers=headers)).json()
    assert detalle["fase"] == "inicio" and detalle["estado"] == "iniciado"
    admitir = {a["codigo"]: a for a in detalle["acciones"]}["admitir"]
    assert admitir["condiciones_pendientes"] == [
        "documentos-requeridos: faltan documentos: plano-acceso"
    ]
    refused = await client.post(f"{url}/acciones/admitir", headers=headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"] == [
        {"field": "documentos-requeridos", "message": "faltan documentos: plano-acceso"}
    ]
    wrong_phase = await client.post(
        f"{url}/acciones/resolver", json={"sentido": "estimada"}, headers=headers
    )
    assert wrong_phase.status_code == 409
    assert "fase inicio" in wrong_phase.json()["detail"]
    system_only = await client.post(f"{url}/acciones/tener-por-desistido", headers=headers)
    assert system_only.status_code == 409
    unknown = await client.post(f"{url}/acciones/volar", headers=headers)
    assert unknown.status_code == 404
    no_role = await client.post(
        f"{url}/acciones/inadmitir",
        json={"sentido": "inadmitida"},
        headers=bearer(token(tenant, "tramitador")),
    )
    assert no_role.status_code == 403
    # Without the 'firma' role the action is not even offered.
    offered = (await client.get(url, headers=bearer(token(tenant, "tramitador")))).json()
    assert "inadmitir" not in {a["codigo"] for a in offered["acciones"]}


async def test_subsanacion_suspends_the_resolution_plazo_and_resumes_it(
    clients, new_tenant, token
) -> None:
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador"))
    expediente_id = await open_by_asiento(clients, tenant, token, "obras-menores")
    url = f"{T}/expedientes/{expediente_id}"
    before = (await client.get(url, headers=headers)).json()
    [resolucion] = before["plazos"]
    assert (resolucion["tipo"], resolucion["estado"]) == ("resolucion", "abierto")
    assert resolucion["dias_habiles_restantes"] > 0

    requerido = await client.post(
        f"{url}/acciones/requerir-subsanacion",
        json={"motivo": "Falta el presupuesto"},
        headers=headers,
    )
    assert requerido.status_code == 200
    detalle = requerido.json()
    assert (detalle["fase"], detalle["estado"]) == ("subsanacion", "suspendido")
    plazos = {p["tipo"]: p for p in detalle["plazos"]}
    assert plazos["resolucion"]["estado"] == "suspendido"
    assert plazos["resolucion"]["dias_habiles_restantes"] is None
    assert plazos["subsanacion"]["estado"] == "abierto"
    assert plazos["subsanacion"]["dias_habiles_restantes"] == 10

    subsanado = await client.post(
        f"{url}/acciones/subsanar",
        json={"documentos": ["presupuesto-obra", "croquis"]},
        headers=headers,
    )
    plazos = {p["tipo"]: p for p in subsanado.json()["plazos"]}
    assert plazos["subsanacion"]["estado"] == "cumplido"
    assert plazos["resolucion"]["estado"] == "abierto"
    assert plazos["resolucion"]["vencimiento"] >= resolucion["vencimiento"]
    assert subsanado.json()["fase"] == "inicio"
    admitido = await client.post(f"{url}/acciones/admitir", headers=headers)
    assert admitido.status_code == 200 and admitido.json()["fase"] == "pago"


async def test_two_schedulers_act_on_an_expired_subsanacion_exactly_once(
    clients, platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador"))
    events = await collect_events(platform.transport, f"{tenant}.tramitador.#")
    ids = [await open_by_asiento(clients, tenant, token, "licencia-vado") for _ in range(3)]
    for expediente_id in ids:
        r = await client.post(
            f"{T}/expedientes/{expediente_id}/acciones/requerir-subsanacion", headers=headers
        )
        assert r.status_code == 200
    runtime = platform.runtimes["tramitador"]
    replicas = [Programador(runtime), Programador(runtime)]
    later = date.today() + timedelta(days=30)
    hechos = await asyncio.gather(*(r.pasada(hoy=later, entidades=[tenant]) for r in replicas))
    assert sum(hechos) == 3
    assert await replicas[0].pasada(hoy=later, entidades=[tenant]) == 0
    for expediente_id in ids:
        detalle = (await client.get(f"{T}/expedientes/{expediente_id}", headers=headers)).json()
        assert (detalle["fase"], detalle["resolucion"]) == ("notificacion", "desistimiento")
        acted = [h for h in detalle["historial"] if h["accion"] == "tener-por-desistido"]
        assert len(acted) == 1 and acted[0]["actor"] == "sistema:plazos"
        resueltos = await eventually(lambda i=expediente_id: _for(events, RESOLUCION, i))
        assert resueltos[0].data["automatica"] is True
    await eventually(lambda: len([e for e in events if str(e.name) == RESOLUCION]) >= 3)
    assert len([e for e in events if str(e.name) == RESOLUCION]) == 3


async def test_resolution_plazo_expiry_gives_silence_or_caducidad(
    clients, platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador"))
    solicitud = await open_by_asiento(clients, tenant, token, "generico")
    oficio = await open_de_oficio(client, tenant, token, "expediente-sancionador")
    runtime = platform.runtimes["tramitador"]
    later = date.today() + timedelta(days=150)
    n = await Programador(runtime).pasada(hoy=later, entidades=[tenant])
    assert n == 2
    assert await Programador(runtime).pasada(hoy=later, entidades=[tenant]) == 0
    generico = (await client.get(f"{T}/expedientes/{solicitud}", headers=headers)).json()
    assert generico["silencio"] == "estimatorio"
    assert generico["fase"] == "inicio"  # the duty to resolve remains (art. 21.1)
    assert [h["accion"] for h in generico["historial"]].count("silencio") == 1
    sancionador = (await client.get(f"{T}/expedientes/{oficio}", headers=headers)).json()
    assert (sancionador["resolucion"], sancionador["fase"]) == ("caducidad", "notificacion")


async def test_answers_for_nobody_waiting_change_nothing(
    clients, platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador"))
    events = await collect_events(platform.transport, f"{tenant}.tramitador.#")
    expediente_id = await open_by_asiento(
        clients, tenant, token, "cambio-titular-licencia-apertura"
    )
    url = f"{T}/expedientes/{expediente_id}"
    await client.post(f"{url}/acciones/requerir-subsanacion", headers=headers)
    await client.post(
        f"{url}/acciones/subsanar",
        json={"documentos": ["conformidad-anterior-titular", "licencia-anterior"]},
        headers=headers,
    )
    assert (await client.post(f"{url}/acciones/admitir", headers=headers)).json()["fase"] == "pago"
    sent = await eventually(lambda: _for(events, PAGO_REQUERIR, expediente_id))
    assert sent[0].data["conceptos"][0]["concepto"] == "tasa-cambio-titularidad"
    # A reply to another request is ignored; the right one moves the expediente on.
    await publish(
        platform,
        tenant,
        "pagos.pago.completado.v1",
        {
            "solicitud_id": "0195a3c5-0f10-7a21-8b3c-4d5e6f7a8b9c",
            "solicitante": "tramitador",
            "expediente_id": expediente_id,
            **_PAGADA,
        },
    )
    marker = await open_by_asiento(clients, tenant, token, "generico")
    assert marker
    assert (await client.get(url, headers=headers)).json()["fase"] == "pago"
    await answer(
        platform,
        tenant,
        events,
        PAGO_REQUERIR,
        "pagos.pago.completado.v1",
        expediente_id,
        _PAGADA,
    )

    async def instruida() -> bool:
        return (await client.get(url, headers=headers)).json()["fase"] == "instruccion"

    await eventually(instruida)


async def test_isolation_citizens_and_search(
    clients, settings: Settings, new_tenant, token
) -> None:
    a, b = await new_tenant(), await new_tenant()
    client = clients["tramitador"]
    nif = factories.nif()
    mine = await open_by_asiento(
        clients, a, token, "licencia-vado", identificador=nif, nombre="Rosa"
    )
    other = await open_by_asiento(clients, a, token, "generico")
    theirs = await open_by_asiento(clients, b, token, "generico")
    staff_a = bearer(token(a, "tramitador"))
    assert (await client.get(f"{T}/expedientes/{theirs}", headers=staff_a)).status_code == 404
    acting = await client.post(f"{T}/expedientes/{theirs}/acciones/admitir", headers=staff_a)
    assert acting.status_code == 404

    citizen = bearer(token(a, "ciudadano", sub="rosa", nif=nif))
    listed = (await client.get(f"{T}/mis-expedientes", headers=citizen)).json()["items"]
    assert [e["id"] for e in listed] == [mine]
    own = await client.get(f"{T}/mis-expedientes/{mine}", headers=citizen)
    assert own.status_code == 200
    assert own.json()["historial"][0]["accion"] == "iniciar" and own.json()["acciones"] == []
    assert (await client.get(f"{T}/mis-expedientes/{other}", headers=citizen)).status_code == 404
    assert (await client.get(f"{T}/expedientes/{mine}", headers=citizen)).status_code == 403

    by_nif = await client.get(f"{T}/expedientes", params={"interesado": nif}, headers=staff_a)
    assert [e["id"] for e in by_nif.json()["items"]] == [mine]
    by_name = await client.get(f"{T}/expedientes", params={"interesado": "ros"}, headers=staff_a)
    assert mine in [e["id"] for e in by_name.json()["items"]]
    page = await client.get(f"{T}/expedientes", params={"limit": 1}, headers=staff_a)
    second = await client.get(
        f"{T}/expedientes",
        params={"limit": 1, "cursor": page.json()["next_cursor"]},
        headers=staff_a,
    )
    assert {page.json()["items"][0]["id"], second.json()["items"][0]["id"]} == {mine, other}
    assert second.json()["next_cursor"] is None
    bad = await client.get(f"{T}/expedientes", params={"cursor": "xx"}, headers=staff_a)
    assert bad.status_code == 422

    # Rows in every table for both councils, then row-level security on each.
    for tenant, expediente_id in ((a, mine), (b, theirs)):
        admin = bearer(token(tenant, "admin"))
        acted = await client.post(
            f"{T}/expedientes/{expediente_id}/acciones/requerir-subsanacion", headers=admin
        )
        assert acted.status_code == 200, acted.text
        await client.put(
            f"{T}/unidades/registro-general/miembros", json={"usuarios": ["ana"]}, headers=admin
        )
        await client.put(
            f"{T}/calendario/2026/festivos-locales", json={"fechas": ["2026-06-24"]}, headers=admin
        )
    tablas = (
        "expedientes",
        "tramites",
        "plazos",
        "historial",
        "documentos",
        "procedimiento_versiones",
        "miembros_unidad",
        "festivos_locales",
    )
    db = Database(settings.app_database_url())
    try:
        async with tenant_transaction(db, a) as session:
            for table in tablas:
                seen = (
                    (
                        await session.execute(
                            text(f"SELECT DISTINCT tenant_id FROM tramitador.{table}")
                        )
                    )
                    .scalars()
                    .all()
                )
                assert seen == [a], table
    finally:
        await db.dispose()


async def test_documents_are_issued_from_templates_and_attached(
    clients, platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador"))
    events = await collect_events(platform.transport, f"{tenant}.{EMITIR}")
    expediente_id = await open_by_asiento(clients, tenant, token, "licencia-vado")
    url = f"{T}/expedientes/{expediente_id}"
    requerido = await client.post(
        f"{url}/acciones/requerir-subsanacion",
        json={"motivo": "Aporte el plano del acceso."},
        headers=headers,
    )
    [documento] = requerido.json()["documentos"]
    assert (documento["plantilla"], documento["estado"]) == ("requerimiento", "emitiendo")
    # The registro asks for the asiento's justificante on the same key: keep ours.
    [command] = await eventually(
        lambda: [
            e for e in events if str(e.name) == EMITIR and e.data["solicitante"] == "tramitador"
        ]
    )
    data = command.data
    assert data["solicitante"] == "tramitador"
    assert data["metadatos"] == {
        "organo": "L01000000",
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD06",
    }
    assert data["nombre_fichero"].startswith("requerimiento-EXP-")
    assert base64.b64decode(data["pdf"]).startswith(b"%PDF-")
    await publish(
        platform,
        tenant,
        "repositorio.emision.fallida.v1",
        {
            "solicitud_id": data["solicitud_id"],
            "solicitante": "tramitador",
            "motivo": "El Ayuntamiento no tiene certificado de sello",
            "codigo": "sin-certificado",
        },
    )

    async def settled() -> dict[str, Any]:
        docs = (await client.get(url, headers=headers)).json()["documentos"]
        return docs[0] if docs[0]["estado"] != "emitiendo" else {}

    fallido = await eventually(settled)
    assert fallido["estado"] == "fallido" and fallido["motivo"].startswith("sin-certificado")

    # Attaching a stored document (read from the repositorio and foliado) is the eni
    # feature's test; another council's expediente is a 404 before anything is read.
    other = await new_tenant()
    foreign = await client.post(
        f"{url}/documentos",
        json={"documento_id": str(uuid.uuid4()), "titulo": "x"},
        headers=bearer(token(other, "tramitador")),
    )
    assert foreign.status_code == 404


async def test_ampliacion_informes_and_reapertura(
    clients, platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador", "firma"))
    events = await collect_events(
        platform.transport, f"{tenant}.tramitador.#", f"{tenant}.{EMITIR}"
    )
    expediente_id = await open_by_asiento(clients, tenant, token, "generico")
    url = f"{T}/expedientes/{expediente_id}"
    assert (await client.post(f"{url}/acciones/admitir", headers=headers)).status_code == 200
    before = {p["tipo"]: p for p in (await client.get(url, headers=headers)).json()["plazos"]}

    # Art. 23: once, by up to half (three months → one more month).
    ampliado = await client.post(f"{url}/acciones/ampliar-plazo", headers=headers)
    after = {p["tipo"]: p for p in ampliado.json()["plazos"]}
    assert after["resolucion"]["vencimiento"] > before["resolucion"]["vencimiento"]
    again = await client.post(f"{url}/acciones/ampliar-plazo", headers=headers)
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "ampliacion-unica"

    # Informes: one comes with the phase, another is asked for; each is emitted once.
    missing = await client.post(f"{url}/acciones/solicitar-informe", json={}, headers=headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "unidad"
    pedido = await client.post(
        f"{url}/acciones/solicitar-informe",
        json={"unidad": "urbanismo", "nombre": "Informe urbanístico"},
        headers=headers,
    )
    informes = [t for t in pedido.json()["tramites"] if t["informe"]]
    assert {t["unidad"] for t in informes} == {"servicio-competente", "urbanismo"}
    assert all(t["vencimiento"] for t in informes)
    audiencia = {a["codigo"]: a for a in pedido.json()["acciones"]}["abrir-audiencia"]
    assert audiencia["condiciones_pendientes"] == ["informes-emitidos: 2 informe(s) pendiente(s)"]
    for sentido in ("favorable", "condicionado"):
        r = await client.post(
            f"{url}/acciones/emitir-informe", json={"sentido": sentido}, headers=headers
        )
        assert r.status_code == 200
    none_left = await client.post(
        f"{url}/acciones/emitir-informe", json={"sentido": "favorable"}, headers=headers
    )
    assert none_left.status_code == 409
    bad_sense = await client.post(
        f"{url}/acciones/formular-propuesta", json={"sentido": "quizas"}, headers=headers
    )
    assert bad_sense.status_code == 409  # not in propuesta yet: the phase comes first

    await walk(client, platform, tenant, headers, events, expediente_id)
    reabierto = await client.post(
        f"{url}/acciones/reabrir",
        json={"motivo": "Recurso de reposición estimado"},
        headers=headers,
    )
    assert reabierto.status_code == 200
    detalle = reabierto.json()
    assert (detalle["fase"], detalle["estado"], detalle["resolucion"]) == (
        "instruccion",
        "en_tramite",
        None,
    )
    assert detalle["historial"][-1]["accion"] == "reabrir"


async def test_an_asiento_naming_an_oficio_only_procedure_opens_nothing(
    clients, platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    registro = bearer(token(tenant, "registro"))
    body = factories.asiento(procedimiento="expediente-sancionador")
    created = await clients["registro"].post(
        "/api/v1/registro/asientos", json=body, headers=registro
    )
    assert created.status_code == 201
    marker = await open_by_asiento(clients, tenant, token, "generico")
    runtime = platform.runtimes["tramitador"]

    async def both_consumed() -> bool:
        async with tenant_transaction(runtime.db, tenant) as session:
            seen = await session.execute(
                select(func.count())
                .select_from(runtime.tables.inbox)
                .where(runtime.tables.inbox.c.consumer == "tramitador.asientos")
            )
        return seen.scalar_one() >= 2

    await eventually(both_consumed)
    listed = await clients["tramitador"].get(
        f"{T}/expedientes", headers=bearer(token(tenant, "tramitador"))
    )
    assert [e["id"] for e in listed.json()["items"]] == [marker]


async def test_every_expediente_is_announced_once_by_its_start_event(
    clients, platform: Platform, new_tenant, token
) -> None:
    """``iniciado`` says how the expediente started: from an asiento (solicitud) or by the
    council's acuerdo de inicio (oficio, art. 58), which has no asiento."""
    tenant = await new_tenant()
    events = await collect_events(platform.transport, f"{tenant}.tramitador.#")
    solicitud = await open_by_asiento(clients, tenant, token, "generico")
    oficio = await open_de_oficio(clients["tramitador"], tenant, token, "expediente-sancionador")
    iniciado = "tramitador.expediente.iniciado.v1"
    [de_oficio] = await eventually(lambda: _for(events, iniciado, oficio))
    [por_asiento] = await eventually(lambda: _for(events, iniciado, solicitud))
    assert de_oficio.data["iniciacion"] == "oficio"
    assert (de_oficio.data["asiento_id"], de_oficio.data["asiento_numero"]) == (None, None)
    assert de_oficio.data["procedimiento"] == "expediente-sancionador"
    assert de_oficio.data["estado"] == "iniciado"
    assert de_oficio.data["interesados"][0]["identificador"]
    assert por_asiento.data["iniciacion"] == "solicitud"
    assert por_asiento.data["asiento_numero"].startswith("E/")
    await asyncio.sleep(0.2)
    assert len([e for e in events if str(e.name) == iniciado]) == 2


async def test_two_schedulers_move_an_expired_audiencia_on_to_the_propuesta_once(
    clients, platform: Platform, new_tenant, token
) -> None:
    """Art. 82: when the plazo de audiencia ends the procedure goes on. The definition's
    ``al_vencer`` (cerrar-audiencia) takes the expediente to the propuesta, once."""
    tenant = await new_tenant()
    client = clients["tramitador"]
    headers = bearer(token(tenant, "tramitador"))
    ids = [await open_by_asiento(clients, tenant, token, "generico") for _ in range(2)]
    for expediente_id in ids:
        for _ in range(10):
            detalle = (await client.get(f"{T}/expedientes/{expediente_id}", headers=headers)).json()
            if detalle["fase"] == "audiencia":
                break
            await step(
                client,
                headers,
                {
                    **detalle,
                    "acciones": [
                        a for a in detalle["acciones"] if a["codigo"] != "cerrar-audiencia"
                    ],
                },
            )
        assert detalle["fase"] == "audiencia"
        audiencia = {p["tipo"]: p for p in detalle["plazos"]}["audiencia"]
        assert audiencia["estado"] == "abierto"
    runtime = platform.runtimes["tramitador"]
    replicas = [Programador(runtime), Programador(runtime)]
    vencida = date.fromisoformat(audiencia["vencimiento"]) + timedelta(days=1)
    # The day it ends the plazo still runs: nothing moves.
    on_the_day = vencida - timedelta(days=1)
    assert await replicas[0].pasada(hoy=on_the_day, entidades=[tenant]) == 0
    hechos = await asyncio.gather(*(r.pasada(hoy=vencida, entidades=[tenant]) for r in replicas))
    assert sum(hechos) == 2
    assert await replicas[1].pasada(hoy=vencida, entidades=[tenant]) == 0
    for expediente_id in ids:
        detalle = (await client.get(f"{T}/expedientes/{expediente_id}", headers=headers)).json()
        assert detalle["fase"] == "propuesta"
        plazos = {p["tipo"]: p for p in detalle["plazos"]}
        assert plazos["audiencia"]["estado"] == "vencido"
        cerradas = [h for h in detalle["historial"] if h["accion"] == "cerrar-audiencia"]
        assert len(cerradas) == 1 and cerradas[0]["actor"] == "sistema:plazos"
        assert cerradas[0]["fase_hacia"] == "propuesta"
        assert "formular-propuesta" in {a["codigo"] for a in detalle["acciones"]}


async def test_an_expedientes_plazos_count_the_holidays_where_its_interesado_lives(
    clients, platform: Platform, database_url, token
) -> None:
    """Art. 30.6: a council in Alicante, an interesado who lives in Madrid. 2 November 2026
    is a holiday in Madrid only, so the tenth día hábil of a subsanación requested on
    19 October is 3 November for them, 2 November for a neighbour."""
    tenant = await tenant_in_province(database_url, "03")
    madrileno = await open_by_asiento(
        clients, tenant, token, "generico", municipio="28079", provincia="28", pais="724"
    )
    vecino = await open_by_asiento(
        clients, tenant, token, "generico", municipio="03014", provincia="03", pais="724"
    )
    runtime = platform.runtimes["tramitador"]
    for expediente_id in (madrileno, vecino):
        async with runtime.unit_of_work(tenant, Actor(sub="ana")) as uow:
            await expedientes.realizar_accion(
                uow,
                expediente_id=expediente_id,
                codigo="requerir-subsanacion",
                datos={},
                roles=frozenset({"tramitador"}),
                hoy=date(2026, 10, 19),
            )
    headers = bearer(token(tenant, "tramitador"))
    vencen = {}
    for expediente_id in (madrileno, vecino):
        detalle = (
            await clients["tramitador"].get(f"{T}/expedientes/{expediente_id}", headers=headers)
        ).json()
        vencen[expediente_id] = {p["tipo"]: p for p in detalle["plazos"]}["subsanacion"][
            "vencimiento"
        ]
    assert vencen == {madrileno: "2026-11-03", vecino: "2026-11-02"}
