"""SICRES 3.0 exchanges on real PostgreSQL and the in-process bus: an asiento exports as a
valid file; a received file is validated, hash-checked and kept pending; accepting it
registers a new entrada of this entity, rejecting it records why; each step is announced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from services.bootstrap import Platform
from services.common.bus.envelope import ReceivedEvent
from services.common.settings import Settings
from services.registro.anexos.domain import Limites, max_cuerpo
from services.registro.intercambios import mensajes as sicres_mensajes
from services.registro.intercambios import sicres
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, collect_events, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

EJEMPLO = Path(__file__).parents[1] / "fixtures" / "sicres3" / "ejemplo-ficheroIntercambio.xml"
XML = {"Content-Type": "application/xml"}
EVENTOS = [
    "registro.intercambio.recibido.v1",
    "registro.intercambio.aceptado.v1",
    "registro.intercambio.rechazado.v1",
    "registro.asiento.registrado.v1",
]


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


auth = bearer


async def listen(platform: Platform, tenant: str) -> list[ReceivedEvent]:
    """Collects the tenant's intercambio and asiento events."""
    return await collect_events(platform.transport, *(f"{tenant}.{name}" for name in EVENTOS))


def of(events: list[ReceivedEvent], name: str) -> list[ReceivedEvent]:
    return [e for e in events if str(e.name) == name]


async def registrar(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    response = await client.post(
        "/api/v1/registro/asientos", json=factories.asiento(**fields), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def recibir(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> Any:
    response = await client.post(
        "/api/v1/registro/intercambios", content=data, headers={**headers, **XML}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_export_validates_against_the_xsd(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    asiento = await registrar(client, headers, tipo="salida")
    response = await client.get(
        f"/api/v1/registro/asientos/{asiento['id']}/sicres", headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    sicres.validate(response.content)
    root = etree.fromstring(response.content)
    identificador = root.findtext("De_Internos_Control/Identificador_Intercambio")
    assert identificador == response.headers["x-identificador-intercambio"]
    assert identificador is not None and len(identificador) <= 33
    assert identificador.startswith("L01000000_")  # the tenant's DIR3 (see conftest)
    assert root.findtext("De_Origen_o_Remitente/Numero_Registro_Entrada") == asiento["numero"]
    assert root.findtext("De_Internos_Control/Tipo_Registro") == "1"
    # Each export is a new exchange with the next number of the entity's counter.
    again = await client.get(f"/api/v1/registro/asientos/{asiento['id']}/sicres", headers=headers)
    siguiente = again.headers["x-identificador-intercambio"]
    assert int(siguiente.rsplit("_", 1)[1]) == int(identificador.rsplit("_", 1)[1]) + 1
    other = auth(token(await new_tenant(), "registro"))
    missing = await client.get(f"/api/v1/registro/asientos/{asiento['id']}/sicres", headers=other)
    assert missing.status_code == 404


async def test_the_shared_example_imports_and_flags_its_empty_anexos(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro", sub="pepe"))
    events = await listen(platform, tenant)
    body = await recibir(client, headers, EJEMPLO.read_bytes())
    assert body["estado"] == "recibido"
    assert body["identificador_intercambio"] == "O00002741_13_00000012"
    assert body["origen"]["numero_registro"] == "O00002741_13_0000012"
    assert body["recibido_por"] == "pepe"
    assert len(body["anexos"]) == 11
    assert all(a["recibido_sin_contenido"] and not a["hash_comprobado"] for a in body["anexos"])
    got = await client.get(f"/api/v1/registro/intercambios/{body['id']}", headers=headers)
    assert got.status_code == 200 and got.json() == body
    listed = await client.get("/api/v1/registro/intercambios?estado=recibido", headers=headers)
    assert [i["id"] for i in listed.json()] == [body["id"]]
    assert listed.headers["x-total-count"] == "1"
    # The same open exchange twice is a conflict.
    twice = await client.post(
        "/api/v1/registro/intercambios", content=EJEMPLO.read_bytes(), headers={**headers, **XML}
    )
    assert twice.status_code == 409

    await eventually(lambda: _count(of(events, EVENTOS[0]), 1))
    [event] = of(events, EVENTOS[0])
    assert event.subject == "O00002741_13_00000012"
    assert event.data["intercambio_id"] == body["id"]
    assert event.data["anexos"] == 11 and event.data["anexos_sin_contenido"] == 11


async def _count(events: list[ReceivedEvent], n: int) -> bool:
    return len(events) >= n


def utf8_export_as_latin1(data: bytes) -> bytes:
    text = data.decode("utf-8").replace("encoding='UTF-8'", "encoding='ISO-8859-1'")
    return text.encode("iso-8859-1")


async def test_an_iso_8859_1_file_is_read_as_declared(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    asiento = await registrar(client, headers, resumen="Solicitud de señalización en vía pública")
    exported = await client.get(
        f"/api/v1/registro/asientos/{asiento['id']}/sicres", headers=headers
    )
    latin1 = utf8_export_as_latin1(exported.content)
    assert "ñ".encode("iso-8859-1") in latin1
    body = await recibir(client, auth(token(await new_tenant(), "registro")), latin1)
    assert body["datos"]["asunto"]["resumen"] == "Solicitud de señalización en vía pública"


async def test_malformed_and_schema_invalid_files_are_422_with_lines(
    client, new_tenant, token
) -> None:
    headers = {**auth(token(await new_tenant(), "registro")), **XML}
    url = "/api/v1/registro/intercambios"
    malformed = await client.post(
        url, content=b"<?xml version='1.0'?>\n<a>\n<b></a>", headers=headers
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"].startswith("application/problem+json")
    assert malformed.json()["errors"][0]["field"].startswith("línea ")

    invalid = (
        EJEMPLO.read_bytes()
        .replace(b"<De_Asunto>", b"<De_Asuntos>")
        .replace(b"</De_Asunto>", b"</De_Asuntos>")
    )
    response = await client.post(url, content=invalid, headers=headers)
    assert response.status_code == 422
    errors = response.json()["errors"]
    line = invalid[: invalid.index(b"<De_Asuntos>")].count(b"\n") + 1
    assert {"field": f"línea {line}", "message": errors[0]["message"]} in errors
    assert "De_Asuntos" in errors[0]["message"]

    wrong_type = await client.post(
        url, content=EJEMPLO.read_bytes(), headers={**headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_a_hash_mismatch_is_422_naming_the_anexo(client, new_tenant, token) -> None:
    headers = auth(token(await new_tenant(), "registro"))
    data = EJEMPLO.read_bytes().replace(
        b"<Anexo><![CDATA[]]></Anexo>", b"<Anexo><![CDATA[aG9sYQ==]]></Anexo>", 1
    )
    response = await client.post(
        "/api/v1/registro/intercambios", content=data, headers={**headers, **XML}
    )
    assert response.status_code == 422, response.text
    assert "O00002741_13_00000012_01_0001.pdf" in response.json()["detail"]


async def test_an_oversize_file_is_413(client, new_tenant, token, settings) -> None:
    headers = auth(token(await new_tenant(), "registro"))
    limite = max_cuerpo(Limites.de(settings))
    data = EJEMPLO.read_bytes() + b" " * limite
    response = await client.post(
        "/api/v1/registro/intercambios", content=data, headers={**headers, **XML}
    )
    assert response.status_code == 413


async def test_accepting_registers_a_new_entrada_and_records_the_origin(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro", sub="pepe"))
    events = await listen(platform, tenant)
    previa = await registrar(client, headers)
    recibido = await recibir(client, headers, EJEMPLO.read_bytes())
    url = f"/api/v1/registro/intercambios/{recibido['id']}"
    response = await client.post(f"{url}/aceptar", headers=headers)
    assert response.status_code == 200, response.text
    aceptado = response.json()
    assert aceptado["estado"] == "aceptado" and aceptado["decidido_por"] == "pepe"
    assert aceptado["origen"] == recibido["origen"]
    asiento = (
        await client.get(f"/api/v1/registro/asientos/{aceptado['asiento_id']}", headers=headers)
    ).json()
    assert asiento["tipo"] == "entrada"
    assert asiento["secuencia"] == previa["secuencia"] + 1  # this entity's own numbering
    assert asiento["numero"] != recibido["origen"]["numero_registro"]
    assert asiento["resumen"] == "SIR IN PR 015"
    assert asiento["interesados"][0]["identificador"] == "11111111H"

    again = await client.post(f"{url}/aceptar", headers=headers)
    assert again.status_code == 409
    reject = await client.post(f"{url}/rechazar", json={"motivo": "tarde"}, headers=headers)
    assert reject.status_code == 409
    other = auth(token(await new_tenant(), "registro"))
    assert (await client.get(url, headers=other)).status_code == 404
    assert (await client.post(f"{url}/aceptar", headers=other)).status_code == 404

    await eventually(lambda: _count(of(events, EVENTOS[1]), 1))
    [event] = of(events, EVENTOS[1])
    assert event.data["asiento_id"] == asiento["id"]
    assert event.data["numero"] == asiento["numero"]
    assert event.data["numero_registro_origen"] == "O00002741_13_0000012"
    await eventually(lambda: _count(of(events, EVENTOS[3]), 2))
    assert asiento["id"] in {e.data["asiento_id"] for e in of(events, EVENTOS[3])}


async def test_rejecting_records_why_and_allows_a_resend(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    events = await listen(platform, tenant)
    recibido = await recibir(client, headers, EJEMPLO.read_bytes())
    url = f"/api/v1/registro/intercambios/{recibido['id']}"
    blank = await client.post(f"{url}/rechazar", json={"motivo": "  "}, headers=headers)
    assert blank.status_code == 422
    response = await client.post(
        f"{url}/rechazar", json={"motivo": "No es competencia de esta entidad"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["estado"] == "rechazado" and body["asiento_id"] is None
    assert body["motivo_rechazo"] == "No es competencia de esta entidad"
    assert (await client.post(f"{url}/aceptar", headers=headers)).status_code == 409
    # The origin may send it again once rejected.
    resent = await recibir(client, headers, EJEMPLO.read_bytes())
    assert resent["id"] != recibido["id"]
    await eventually(lambda: _count(of(events, EVENTOS[2]), 1))
    assert of(events, EVENTOS[2])[0].data["motivo"] == "No es competencia de esta entidad"


async def test_round_trip_between_two_entities_keeps_every_field(client, new_tenant, token) -> None:
    emisor = auth(token(await new_tenant(), "registro"))
    receptor = auth(token(await new_tenant(), "registro"))
    original = await registrar(
        client,
        emisor,
        tipo="salida",
        resumen="Remisión de solicitud de ayuda, año 2026",
        unidad_destino="A04003003",
        procedimiento="ayudas-2026",
        interesados=[
            factories.interesado(nombre="Lucía", apellido1="Núñez", apellido2="Peña"),
            {"tipo_identificador": "CIF", "identificador": "B12345674", "nombre": "Obras SL"},
            factories.interesado(tipo_identificador="NIE", identificador=factories.nie()),
            {"tipo_identificador": "PASAPORTE", "identificador": "XDA123456", "nombre": "John"},
        ],
    )
    exported = await client.get(
        f"/api/v1/registro/asientos/{original['id']}/sicres", headers=emisor
    )
    recibido = await recibir(client, receptor, exported.content)
    aceptado = (
        await client.post(
            f"/api/v1/registro/intercambios/{recibido['id']}/aceptar", headers=receptor
        )
    ).json()
    nuevo = (
        await client.get(f"/api/v1/registro/asientos/{aceptado['asiento_id']}", headers=receptor)
    ).json()
    for field in ("resumen", "unidad_destino", "procedimiento", "interesados"):
        assert nuevo[field] == original[field], field
    # An exchange is always an entrada for whoever receives it, with its own number.
    assert nuevo["tipo"] == "entrada" and nuevo["id"] != original["id"]
    assert aceptado["origen"]["codigo_entidad_registral"] == "L01000000"
    assert aceptado["origen"]["numero_registro"] == original["numero"]
    # SICRES carries the date to the second.
    enviada = datetime.fromisoformat(original["fecha_registro"]).replace(microsecond=0)
    assert datetime.fromisoformat(aceptado["origen"]["fecha_registro"]) == enviada


async def test_round_trip_keeps_the_full_sicres_field_set(client, new_tenant, token) -> None:
    emisor_ine = await new_tenant()
    emisor = auth(token(emisor_ine, "registro"))
    receptor = auth(token(await new_tenant(), "registro"))
    alta = await client.post(
        "/api/v1/registro/oficinas",
        json={"codigo": "O00002741", "nombre": "Oficina de registro"},
        headers=auth(token(emisor_ine, "admin")),
    )
    assert alta.status_code == 201, alta.text
    original = await registrar(
        client,
        emisor,
        interesados=[factories.interesado_completo()],
        **{**factories.CAMPOS_SICRES, "origen": None},
    )
    exported = await client.get(
        f"/api/v1/registro/asientos/{original['id']}/sicres", headers=emisor
    )
    assert exported.status_code == 200, exported.text
    recibido = await recibir(client, receptor, exported.content)
    aceptado = (
        await client.post(
            f"/api/v1/registro/intercambios/{recibido['id']}/aceptar", headers=receptor
        )
    ).json()
    nuevo = (
        await client.get(f"/api/v1/registro/asientos/{aceptado['asiento_id']}", headers=receptor)
    ).json()
    for campo in factories.CAMPOS_QUE_VIAJAN:
        assert nuevo[campo] == original[campo], campo
    # The receiver records where it came from: the sending oficina, its number and date.
    assert nuevo["origen"]["entidad_registral"] == "O00002741"
    assert nuevo["origen"]["numero_registro"] == original["numero"]


async def test_the_origin_gets_an_ack_then_a_confirmation_or_the_file_back(
    client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    recibido = await recibir(client, headers, EJEMPLO.read_bytes())
    url = f"/api/v1/registro/intercambios/{recibido['id']}"

    acuse = await client.get(f"{url}/mensaje", headers=headers)
    assert acuse.status_code == 200, acuse.text
    assert acuse.headers["content-type"].startswith("application/xml")
    mensaje = sicres_mensajes.parse_mensaje(acuse.content)
    assert mensaje.tipo is sicres_mensajes.TipoMensaje.ACK
    # From the register the file was addressed to, back to the one that sent it.
    assert (mensaje.codigo_entidad_origen, mensaje.codigo_entidad_destino) == (
        "O00002061",
        "O00002741",
    )
    assert mensaje.identificador_intercambio == "O00002741_13_00000012"
    assert (
        mensaje.identificadores_fichero
        == tuple(a["identificador_fichero"] for a in recibido["anexos"])[:10]
    )
    assert (await client.get(f"{url}/rechazo", headers=headers)).status_code == 409

    assert (await client.post(f"{url}/aceptar", headers=headers)).status_code == 200
    intercambio = (await client.get(url, headers=headers)).json()
    asiento = (
        await client.get(f"/api/v1/registro/asientos/{intercambio['asiento_id']}", headers=headers)
    ).json()
    confirmacion = sicres_mensajes.parse_mensaje(
        (await client.get(f"{url}/mensaje", headers=headers)).content
    )
    assert confirmacion.tipo is sicres_mensajes.TipoMensaje.CONFIRMACION
    assert confirmacion.numero_registro_destino == asiento["numero"]
    registrado = datetime.fromisoformat(asiento["fecha_registro"]).replace(microsecond=0)
    assert confirmacion.fecha_registro_destino == registrado

    otra = auth(token(await new_tenant(), "registro"))
    assert (await client.get(f"{url}/mensaje", headers=otra)).status_code == 404


async def test_a_rejected_exchange_goes_back_with_anotacion_04(client, new_tenant, token) -> None:
    headers = auth(token(await new_tenant(), "registro"))
    recibido = await recibir(client, headers, EJEMPLO.read_bytes())
    url = f"/api/v1/registro/intercambios/{recibido['id']}"
    rechazado = await client.post(
        f"{url}/rechazar", json={"motivo": "No es competencia de esta entidad"}, headers=headers
    )
    assert rechazado.status_code == 200
    assert (await client.get(f"{url}/mensaje", headers=headers)).status_code == 409
    devuelto = await client.get(f"{url}/rechazo", headers=headers)
    assert devuelto.status_code == 200
    fichero = sicres.parse_fichero(devuelto.content)  # validates against the XSD
    assert fichero.tipo_anotacion == "04"
    assert fichero.observaciones_apunte == "No es competencia de esta entidad"
    assert fichero.identificador_intercambio == recibido["identificador_intercambio"]
