"""Anexos of asientos on real PostgreSQL and the in-process bus, registro and repositorio
wired as the platform wires them: the anexos of a new asiento become documents of the
repositorio with the same SHA-256; limits and bad content are refused; the SICRES export
carries them (valid against the XSD, Hash matching) and an import into another entity
stores them there; the repositorio stores each command once and dead-letters what it
never can."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import func, select

from services.bootstrap import Platform
from services.common.bus.envelope import ReceivedEvent
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.deadletters import list_dead_letters
from services.registro.anexos.schemas import AnexoCreate
from services.registro.anexos.service import ALMACENAR_DOCUMENTO, guardar_anexos
from services.registro.domain import TipoAsiento
from services.registro.intercambios import sicres
from tests.support import factories
from tests.support.platforms import (
    asgi_client,
    bearer,
    collect_events,
    connect_repositorio,
    running_platform,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

EJEMPLO = Path(__file__).parents[1] / "fixtures" / "sicres3" / "ejemplo-ficheroIntercambio.xml"
ASIENTOS = "/api/v1/registro/asientos"
DOCUMENTOS = "/api/v1/documentos"
ALMACENADO = "repositorio.documento.almacenado.v1"
XML = {"Content-Type": "application/xml"}
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\n%solicitud firmada\n%%EOF\n"
PLANO = b"<?xml version='1.0' encoding='UTF-8'?>\n<plano>Calle Mayor, 12</plano>\n"
FIRMA = b"0\x82\x01\x00firma CAdES separada"
SELLO = b"0\x82\x02\x00token RFC 3161"
# Stands for a long MIME type (more than SICRES's 20 characters in Tipo_MIME).
ODT = b"PK\x03\x04mimetypeapplication/vnd.oasis.opendocument.text"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro", "repositorio"]) as built:
        connect_repositorio(built)
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


@pytest.fixture
async def documentos(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["repositorio"]) as c:
        yield c


def dos_anexos() -> list[dict[str, Any]]:
    return [
        {
            "nombre": "solicitud.pdf",
            "contenido": b64(PDF),
            "validez": "04",
            "tipo_documento": "01",
            "firma": b64(FIRMA),
            "sello_tiempo": b64(SELLO),
            "observaciones": "firmada por la interesada",
        },
        {"nombre": "plano.xml", "contenido": b64(PLANO), "validez": "02"},
    ]


async def registrar(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    response = await client.post(ASIENTOS, json=factories.asiento(**fields), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def almacenado(documentos: httpx.AsyncClient, headers: dict[str, str], id_: str) -> Any:
    """The documento once the repositorio has stored it."""

    async def stored() -> Any:
        response = await documentos.get(f"{DOCUMENTOS}/{id_}", headers=headers)
        return response.json() if response.status_code == 200 else None

    return await eventually(stored)


async def descargar(documentos: httpx.AsyncClient, headers: dict[str, str], anexo: Any) -> bytes:
    url = f"{DOCUMENTOS}/{anexo['documento_id']}/versiones/{anexo['version']}/contenido"
    response = await documentos.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def of(events: list[ReceivedEvent], documento_id: str) -> list[ReceivedEvent]:
    return [e for e in events if e.data["documento_id"] == documento_id]


async def test_anexos_become_documents_of_the_repositorio_with_the_same_sha256(
    client, documentos, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro"))
    lector = bearer(token(tenant, "documentos"))
    events = await collect_events(platform.transport, f"{tenant}.{ALMACENADO}")
    registrados = await collect_events(
        platform.transport, f"{tenant}.registro.asiento.registrado.v1"
    )
    asiento = await registrar(client, headers, anexos=dos_anexos())
    firmado, plano = asiento["anexos"]
    # The registration event tells backoffices where each anexo is and its hash.
    [registrado] = await eventually(lambda: registrados)
    assert [(a["documento_id"], a["sha256"]) for a in registrado.data["anexos"]] == [
        (firmado["documento_id"], firmado["sha256"]),
        (plano["documento_id"], plano["sha256"]),
    ]
    assert "firma" not in registrado.data["anexos"][0]
    assert firmado["identificador_fichero"] == asiento["numero"].replace("/", "_") + "_0001.pdf"
    assert plano["identificador_fichero"].endswith("_0002.xml")
    assert firmado["sha256"] == sha(PDF) and firmado["tamano"] == len(PDF)
    assert firmado["tipo_mime"] == "application/pdf"
    assert firmado["firma"] == b64(FIRMA) and firmado["sello_tiempo"] == b64(SELLO)
    assert firmado["validez"] == "04" and firmado["tipo_documento"] == "01"
    assert firmado["observaciones"] == "firmada por la interesada"
    assert plano["sha256"] == sha(PLANO) and plano["tipo_mime"] == "application/xml"
    assert plano["firma"] is None and plano["tipo_documento"] == "02"
    assert not firmado["sin_contenido"] and not plano["sin_contenido"]
    assert firmado["documento_id"] != plano["documento_id"]
    # The asiento keeps them as it answered them.
    got = await client.get(f"{ASIENTOS}/{asiento['id']}", headers=headers)
    assert got.json()["anexos"] == asiento["anexos"]

    for anexo, data, estado, tipo in (
        (firmado, PDF, "EE01", "TD14"),
        (plano, PLANO, "EE03", "TD99"),
    ):
        documento = await almacenado(documentos, lector, anexo["documento_id"])
        version = documento["version_actual"]
        assert version["sha256"] == anexo["sha256"] and version["nombre"] == anexo["nombre"]
        eni = version["metadatos"]
        assert eni["organo"] == "L01000000"  # the tenant's DIR3 (see conftest)
        assert eni["origen"] == "ciudadano"
        assert (eni["estado_elaboracion"], eni["tipo_documental"]) == (estado, tipo)
        descargado = await descargar(documentos, lector, anexo)
        assert descargado == data and sha(descargado) == anexo["sha256"]
        [event] = await eventually(lambda a=anexo: of(events, a["documento_id"]))
        assert event.data["referencia"] == {
            "tipo": "asiento",
            "id": asiento["id"],
            "numero": asiento["numero"],
        }
    otra = bearer(token(await new_tenant(), "documentos"))
    assert (
        await documentos.get(f"{DOCUMENTOS}/{plano['documento_id']}", headers=otra)
    ).status_code == 404


async def test_an_asiento_of_salida_stores_documents_of_the_administration(
    client, documentos, new_tenant, token
) -> None:
    tenant = await new_tenant()
    asiento = await registrar(
        client,
        bearer(token(tenant, "registro")),
        tipo="salida",
        anexos=[{"nombre": "resolucion", "contenido": b64(PDF)}],
    )
    [anexo] = asiento["anexos"]
    assert anexo["tipo_mime"] == "application/pdf"  # no extension: read from the bytes
    documento = await almacenado(
        documentos, bearer(token(tenant, "documentos")), anexo["documento_id"]
    )
    assert documento["version_actual"]["metadatos"]["origen"] == "administracion"


@pytest.fixture
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A registro that takes anexos of at most 1000 bytes, 1500 in all."""
    limited = settings.model_copy(
        update={"registro_max_anexo_bytes": 1000, "registro_max_anexos_bytes": 1500}
    )
    async with (
        running_platform(limited, ["registro"]) as built,
        asgi_client(built.apps["registro"]) as c,
    ):
        yield c


async def test_oversize_anexos_are_413_and_register_nothing(small, new_tenant, token) -> None:
    headers = bearer(token(await new_tenant(), "registro"))
    uno = await small.post(
        ASIENTOS,
        json=factories.asiento(
            anexos=[{"nombre": "a.pdf", "contenido": b64(b"%PDF-" + b"x" * 996)}]
        ),
        headers=headers,
    )
    assert uno.status_code == 413, uno.text
    assert uno.headers["content-type"] == "application/problem+json"
    assert uno.json()["errors"][0]["field"] == "anexos[0].contenido"
    dos = await small.post(
        ASIENTOS,
        json=factories.asiento(
            anexos=[
                {"nombre": "a.pdf", "contenido": b64(b"%PDF-" + b"x" * 795)},
                {"nombre": "b.pdf", "contenido": b64(b"%PDF-" + b"y" * 795)},
            ]
        ),
        headers=headers,
    )
    assert dos.status_code == 413, dos.text
    assert dos.json()["errors"][0]["field"] == "anexos"
    # A body that cannot hold anexos within the limits is refused before it is parsed.
    enorme = b'{"tipo": "entrada", "resumen": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    body = await small.post(
        ASIENTOS, content=enorme, headers={**headers, "Content-Type": "application/json"}
    )
    assert body.status_code == 413
    listed = await small.get(ASIENTOS, headers=headers)
    assert listed.json()["total"] == 0


async def test_bad_base64_or_an_unknown_format_is_422_naming_the_anexo(
    client, new_tenant, token
) -> None:
    headers = bearer(token(await new_tenant(), "registro"))
    response = await client.post(
        ASIENTOS,
        json=factories.asiento(
            anexos=[
                {"nombre": "bien.pdf", "contenido": b64(PDF)},
                {"nombre": "mal.pdf", "contenido": "esto no es base64!"},
            ]
        ),
        headers=headers,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["anexos[1].contenido"]
    exe = await client.post(
        ASIENTOS,
        json=factories.asiento(anexos=[{"nombre": "virus.exe", "contenido": b64(b"MZ\x90")}]),
        headers=headers,
    )
    assert exe.status_code == 422
    assert exe.json()["errors"][0]["field"] == "anexos[0].nombre"
    ruta = await client.post(
        ASIENTOS,
        json=factories.asiento(anexos=[{"nombre": "../../x.pdf", "contenido": b64(PDF)}]),
        headers=headers,
    )
    assert ruta.status_code == 422
    assert ruta.json()["errors"][0]["field"] == "anexos[0].nombre"
    assert (await client.get(ASIENTOS, headers=headers)).json()["total"] == 0


# --- SICRES 3.0 --------------------------------------------------------------------------------


async def exportar(
    client: httpx.AsyncClient, documentos: httpx.AsyncClient, tenant: str, token: Any
) -> tuple[Any, bytes]:
    """An asiento with three anexos (one signed), stored, then exported as SICRES."""
    headers = bearer(token(tenant, "registro", "documentos"))
    lista = [*dos_anexos(), {"nombre": "memoria.odt", "contenido": b64(ODT)}]
    asiento = await registrar(client, headers, anexos=lista)
    for anexo in asiento["anexos"]:
        await almacenado(documentos, headers, anexo["documento_id"])
    response = await client.get(f"{ASIENTOS}/{asiento['id']}/sicres", headers=headers)
    assert response.status_code == 200, response.text
    return asiento, response.content


async def test_the_sicres_export_carries_the_anexos_with_matching_hashes(
    client, documentos, new_tenant, token
) -> None:
    tenant = await new_tenant()
    asiento, data = await exportar(client, documentos, tenant, token)
    sicres.validate(data)
    blocks = etree.fromstring(data).findall("De_Anexo")
    assert len(blocks) == 3
    for block, anexo, contenido in zip(blocks, asiento["anexos"], (PDF, PLANO, ODT), strict=True):
        assert block.findtext("Nombre_Fichero_Anexado") == anexo["nombre"]
        assert block.findtext("Identificador_Fichero") == anexo["identificador_fichero"]
        assert block.findtext("Tipo_Documento") == anexo["tipo_documento"]
        assert base64.b64decode(block.findtext("Anexo") or "") == contenido
        digest = base64.b64decode(block.findtext("Hash") or "")
        assert digest == hashlib.sha256(contenido).digest()
    firmado, plano, odt = blocks
    assert base64.b64decode(firmado.findtext("Firma_Documento") or "") == FIRMA
    assert base64.b64decode(firmado.findtext("TimeStamp") or "") == SELLO
    assert firmado.findtext("Validez_Documento") == "04"
    assert firmado.findtext("Tipo_MIME") == "application/pdf"
    assert plano.find("Firma_Documento") is None and plano.findtext("Validez_Documento") == "02"
    # Longer than SICRES's 20 characters: the MIME type is left out, the name says it.
    assert odt.find("Tipo_MIME") is None


async def test_exporting_anexos_needs_the_documentos_role(
    client, documentos, new_tenant, token
) -> None:
    tenant = await new_tenant()
    asiento, _ = await exportar(client, documentos, tenant, token)
    solo_registro = bearer(token(tenant, "registro"))
    response = await client.get(f"{ASIENTOS}/{asiento['id']}/sicres", headers=solo_registro)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "documentos" in response.json()["detail"]


async def aceptar(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> Any:
    recibido = await client.post(
        "/api/v1/registro/intercambios", content=data, headers={**headers, **XML}
    )
    assert recibido.status_code == 201, recibido.text
    url = f"/api/v1/registro/intercambios/{recibido.json()['id']}/aceptar"
    aceptado = await client.post(url, headers=headers)
    assert aceptado.status_code == 200, aceptado.text
    asiento = await client.get(f"{ASIENTOS}/{aceptado.json()['asiento_id']}", headers=headers)
    return asiento.json()


async def test_an_exchange_accepted_in_another_entity_stores_its_anexos_there(
    client, documentos, new_tenant, token
) -> None:
    origen, data = await exportar(client, documentos, await new_tenant(), token)
    destino = await new_tenant()
    headers = bearer(token(destino, "registro", "documentos"))
    asiento = await aceptar(client, headers, data)
    contenidos = (PDF, PLANO, ODT)
    for enviado, anexo, contenido in zip(
        origen["anexos"], asiento["anexos"], contenidos, strict=True
    ):
        for campo in (
            "identificador_fichero",
            "nombre",
            "tipo_mime",
            "tamano",
            "sha256",
            "validez",
            "tipo_documento",
            "observaciones",
            "firma",
            "sello_tiempo",
        ):
            assert anexo[campo] == enviado[campo], campo
        assert not anexo["sin_contenido"] and anexo["documento_id"] != enviado["documento_id"]
        documento = await almacenado(documentos, headers, anexo["documento_id"])
        assert documento["version_actual"]["sha256"] == enviado["sha256"]
        assert await descargar(documentos, headers, anexo) == contenido
    # The documents are the new entity's: the origin's users do not see them.
    ajeno = bearer(token(await new_tenant(), "documentos"))
    documento_id = asiento["anexos"][0]["documento_id"]
    assert (await documentos.get(f"{DOCUMENTOS}/{documento_id}", headers=ajeno)).status_code == 404


async def test_the_shared_example_s_anexos_are_kept_flagged_without_content(
    client, new_tenant, token
) -> None:
    headers = bearer(token(await new_tenant(), "registro"))
    asiento = await aceptar(client, headers, EJEMPLO.read_bytes())
    assert len(asiento["anexos"]) == 11
    for anexo in asiento["anexos"]:
        assert anexo["sin_contenido"] is True
        assert anexo["documento_id"] is None and anexo["tamano"] is None
        # The example's hashes are MD5 hex digests: not a SHA-256, kept as they came.
        assert anexo["sha256"] is None and anexo["hash_origen"]
    primero, firma = asiento["anexos"][0], asiento["anexos"][1]
    assert primero["identificador_fichero"] == "O00002741_13_00000012_01_0001.pdf"
    assert primero["nombre"] == "Dummy200K.pdf" and primero["tipo_mime"] == "application/pdf"
    assert (primero["validez"], primero["tipo_documento"]) == ("03", "02")
    assert primero["observaciones"] == "1"
    assert primero["hash_origen"] == "MWE4YjNjOWZlNWUyMWYyYmY2ZGVjZTkwMmNkY2Y4ZTU="
    assert firma["identificador_documento_firmado"] == primero["identificador_fichero"]
    assert firma["validez"] is None and firma["tipo_documento"] == "03"
    # Passed on as received: the same Hash, still without content.
    exported = await client.get(f"{ASIENTOS}/{asiento['id']}/sicres", headers=headers)
    assert exported.status_code == 200, exported.text
    sicres.validate(exported.content)
    block = etree.fromstring(exported.content).find("De_Anexo")
    assert block is not None
    assert block.findtext("Hash") == primero["hash_origen"]
    assert block.find("Anexo") is None


# --- the repositorio's consumer ----------------------------------------------------------------


def comando(documento_id: str, contenido: bytes, sha256: str) -> dict[str, Any]:
    return {
        "documento_id": documento_id,
        "nombre": "anexo.pdf",
        "mime": "application/pdf",
        "contenido": b64(contenido),
        "sha256": sha256,
        "metadatos": {
            "organo": "L01000000",
            "origen": "ciudadano",
            "estado_elaboracion": "EE01",
            "tipo_documental": "TD99",
        },
    }


async def procesados(platform: Platform, tenant: str) -> int:
    runtime = platform.runtimes["repositorio"]
    inbox = runtime.tables.inbox
    async with tenant_transaction(runtime.db, tenant) as session:
        result = await session.execute(
            select(func.count()).where(
                inbox.c.consumer == "repositorio.almacenar", inbox.c.tenant_id == tenant
            )
        )
        return int(result.scalar_one())


async def test_the_repositorio_stores_each_documento_once_and_dead_letters_the_impossible(
    platform, documentos, settings, new_tenant, token
) -> None:
    tenant = await new_tenant()
    lector = bearer(token(tenant, "documentos"))
    events = await collect_events(platform.transport, f"{tenant}.{ALMACENADO}")
    registro = platform.runtimes["registro"]
    async with registro.unit_of_work(tenant, Actor("pruebas")) as uow:
        [anexo] = await guardar_anexos(
            uow,
            asiento_id=str(uuid.uuid4()),
            numero="E/2026/000099",
            tipo=TipoAsiento.ENTRADA,
            anexos=[AnexoCreate(nombre="anexo.pdf", contenido=b64(PDF))],
        )
    assert anexo.documento_id is not None
    await almacenado(documentos, lector, anexo.documento_id)

    # The same documento again (a requester's retry), even with other bytes: skipped.
    async with registro.unit_of_work(tenant, Actor("pruebas")) as uow:
        uow.emit(ALMACENAR_DOCUMENTO, comando(anexo.documento_id, PLANO, sha(PLANO)))
    await eventually(lambda: _at_least(procesados(platform, tenant), 2))
    versiones = await documentos.get(f"{DOCUMENTOS}/{anexo.documento_id}/versiones", headers=lector)
    assert [v["sha256"] for v in versiones.json()["items"]] == [sha(PDF)]
    assert len(of(events, anexo.documento_id)) == 1

    # Content that does not match its hash can never be stored: a dead letter saying why.
    roto = str(uuid.uuid4())
    async with registro.unit_of_work(tenant, Actor("pruebas")) as uow:
        uow.emit(ALMACENAR_DOCUMENTO, comando(roto, PDF, sha(PLANO)))

    async def dead() -> list[Any]:
        letters = await list_dead_letters(settings)
        return [
            letter
            for letter in letters
            if letter.tenant_id == tenant and letter.consumer == "repositorio.almacenar"
        ]

    [letter] = await eventually(dead)
    assert roto in letter.reason and "sha256" in letter.reason
    assert (await documentos.get(f"{DOCUMENTOS}/{roto}", headers=lector)).status_code == 404


async def _at_least(count: Any, n: int) -> bool:
    return int(await count) >= n


async def test_anexos_at_sir_s_limits_are_registered_and_stored(
    client, documentos, new_tenant, token
) -> None:
    """10 MiB and 5 MiB, the most SIR takes: the command still fits its contract."""
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro", "documentos"))
    grande = (b"%PDF-1.4\n" + bytes(range(256)) * 40960)[: 10 * 1024 * 1024]
    mediano = b"%PDF-1.4\n" + b"m" * (5 * 1024 * 1024 - 9)
    asiento = await registrar(
        client,
        headers,
        anexos=[
            {"nombre": "grande.pdf", "contenido": b64(grande)},
            {"nombre": "mediano.pdf", "contenido": b64(mediano)},
        ],
    )
    assert [a["tamano"] for a in asiento["anexos"]] == [10 * 1024 * 1024, 5 * 1024 * 1024]
    for anexo, data in zip(asiento["anexos"], (grande, mediano), strict=True):
        documento = await almacenado(documentos, headers, anexo["documento_id"])
        assert documento["version_actual"]["sha256"] == sha(data)
    uno_mas = await client.post(
        ASIENTOS,
        json=factories.asiento(
            anexos=[
                {"nombre": "grande.pdf", "contenido": b64(grande)},
                {"nombre": "mediano.pdf", "contenido": b64(mediano + b"x")},
            ]
        ),
        headers=headers,
    )
    assert uno_mas.status_code == 413
    assert uno_mas.json()["errors"][0]["field"] == "anexos"
