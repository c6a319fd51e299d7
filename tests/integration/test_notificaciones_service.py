"""notificaciones on real PostgreSQL through its app, with the real repositorio beside it:
creation checked against the repositorio, the citizen's carpeta, access by the addressee
or their representative, rejection, expiry by the clock, postal attempts and the BOE,
tenant isolation, and the events in the outbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.bootstrap import Platform
from services.common.bus.consumer import PermanentFailure
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.notificaciones import service
from services.notificaciones.clock import ControlledClock
from services.notificaciones.documentos import DocumentosClient
from services.notificaciones.models import kernel, notificaciones
from services.notificaciones.vencimientos import Vencedor
from services.repositorio.storage.filesystem import FilesystemBlobStore
from tests.support.factories import nif
from tests.support.platforms import asgi_client, bearer, record_documents, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

URL = "/api/v1/notificaciones"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
CIF = "B12345674"
# 9:15:42 on 2 November 2026 in Madrid (CET).
INICIO = datetime(2026, 11, 2, 8, 15, 42, tzinfo=UTC)
PLAZO = timedelta(days=10)


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[Platform]:
    """repositorio and notificaciones on the in-process bus, sharing one controlled clock."""
    async with running_platform(settings, ["repositorio", "notificaciones"]) as platform:
        platform.apps["repositorio"].state.blob_store = FilesystemBlobStore(tmp_path / "docs")
        app = platform.apps["notificaciones"]
        app.state.documentos_client = DocumentosClient(
            "http://repositorio",
            transport=httpx.ASGITransport(app=platform.apps["repositorio"]),
            timeout=10,
        )
        app.state.clock = ControlledClock(INICIO)
        yield platform


@pytest.fixture
def clock(platform: Platform) -> ControlledClock:
    clock: ControlledClock = platform.apps["notificaciones"].state.clock
    return clock


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["notificaciones"]) as out:
        yield out


@pytest.fixture
async def tenant(new_tenant: Callable[..., Any]) -> str:
    code: str = await new_tenant()
    return code


@pytest.fixture
def personal(tenant: str, token: Callable[..., str]) -> dict[str, str]:
    return bearer(token(tenant, "notificaciones", "documentos", sub="funcionaria"))


def ciudadano(token: Callable[..., str], tenant: str, identificador: str) -> dict[str, str]:
    return bearer(token(tenant, "ciudadano", sub=f"ciudadano-{identificador}", nif=identificador))


async def subir_documento(platform: Platform, headers: dict[str, str]) -> str:
    """A resolución stored in the real repositorio; answers its id."""
    meta = {
        "organo": "L01030149",
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD01",
    }
    async with asgi_client(platform.apps["repositorio"]) as repo:
        response = await repo.post(
            "/api/v1/documentos",
            headers=headers,
            files=[
                ("metadatos", (None, json.dumps(meta).encode(), "application/json")),
                ("file", ("resolucion.pdf", PDF, "application/pdf")),
            ],
        )
    assert response.status_code == 201, response.text
    documento_id: str = response.json()["id"]
    return documento_id


def persona(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tipo_identificador": "NIF",
        "identificador": nif(),
        "nombre": "Lucía García",
        "eligio_electronico": True,
        "email": "lucia@example.org",
    }
    data.update(overrides)
    return data


def postal(**overrides: Any) -> dict[str, Any]:
    return persona(
        eligio_electronico=False,
        direccion_postal={
            "direccion": "Calle Mayor 1, 2º B",
            "codigo_postal": "03001",
            "municipio": "Alicante/Alacant",
            "provincia": "Alicante",
        },
        **overrides,
    )


async def crear(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    documento_id: str,
    *interesados: dict[str, Any],
) -> list[dict[str, Any]]:
    response = await client.post(
        URL,
        headers=headers,
        json={
            "documento_id": documento_id,
            "expediente_id": "EXP/2026/000017",
            "concepto": "Resolución de licencia de obra menor",
            "interesados": list(interesados),
        },
    )
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def eventos(platform: Platform, tenant: str, nombre: str) -> list[dict[str, Any]]:
    """The data of the events ``nombre`` of ``tenant`` in the outbox, oldest first."""
    outbox = kernel.outbox
    async with platform.runtimes["notificaciones"].db.engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.envelope)
            .where(outbox.c.tenant_id == tenant, outbox.c.routing_key == f"{tenant}.{nombre}")
            .order_by(outbox.c.id)
        )
        return [r.envelope["data"] for r in rows]


async def filas(platform: Platform, tenant: str) -> int:
    async with tenant_transaction(platform.runtimes["notificaciones"].db, tenant) as session:
        return int(
            (await session.execute(select(func.count()).select_from(notificaciones))).scalar_one()
        )


PUESTA = "notificaciones.notificacion.puesta-disposicion.v1"
PRACTICADA = "notificaciones.notificacion.practicada.v1"
FALLIDA = "notificaciones.notificacion.fallida.v1"
RECHAZADA = "notificaciones.notificacion.rechazada.v1"
EXPIRADA = "notificaciones.notificacion.expirada.v1"


# --- creation ---


async def test_a_company_is_notified_electronically_and_expires_ten_days_later(
    platform: Platform, client: httpx.AsyncClient, tenant: str, personal: dict[str, str]
) -> None:
    documento = await subir_documento(platform, personal)
    [creada] = await crear(
        client,
        personal,
        documento,
        persona(
            tipo_identificador="CIF",
            identificador=CIF,
            nombre="Construcciones Levante SL",
            eligio_electronico=False,
        ),
    )
    assert creada["canal"] == "electronico"
    assert creada["estado"] == "puesta_disposicion"
    # Stored but never issued: no CSV, so no public download.
    assert creada["documento"] == {
        "documento_id": documento,
        "version": 1,
        "nombre": "resolucion.pdf",
        "csv": None,
        "url_verificacion": None,
        "descarga": None,
    }
    assert datetime.fromisoformat(creada["vence_en"]) == INICIO + PLAZO
    [evento] = await eventos(platform, tenant, PUESTA)
    assert evento["notificacion_id"] == creada["id"]
    assert evento["destinatario"] == {"tipo_identificador": "CIF", "identificador": CIF}
    assert evento["fecha_legal"] == "2026-11-02"
    assert datetime.fromisoformat(evento["vence_en"]) == INICIO + PLAZO
    assert "nombre" not in json.dumps(evento)


async def test_a_document_that_does_not_exist_is_a_clear_error_and_nothing_is_written(
    platform: Platform, client: httpx.AsyncClient, tenant: str, personal: dict[str, str]
) -> None:
    response = await client.post(
        URL,
        headers=personal,
        json={
            "documento_id": "0195a3c5-2b10-7c31-9d42-5e6f7a8b9c0d",
            "concepto": "Resolución",
            "interesados": [persona()],
        },
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["documento_id"]
    assert await filas(platform, tenant) == 0
    assert await eventos(platform, tenant, PUESTA) == []


async def test_a_postal_addressee_without_address_fails_the_whole_request(
    platform: Platform, client: httpx.AsyncClient, tenant: str, personal: dict[str, str]
) -> None:
    documento = await subir_documento(platform, personal)
    response = await client.post(
        URL,
        headers=personal,
        json={
            "documento_id": documento,
            "concepto": "Resolución",
            "interesados": [persona(), persona(eligio_electronico=False)],
        },
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["interesados[1].direccion_postal"]
    assert await filas(platform, tenant) == 0


async def test_a_bad_nif_is_refused_naming_the_field(
    client: httpx.AsyncClient, personal: dict[str, str]
) -> None:
    response = await client.post(
        URL,
        headers=personal,
        json={
            "documento_id": "0195a3c5-2b10-7c31-9d42-5e6f7a8b9c0d",
            "concepto": "Resolución",
            "interesados": [persona(identificador="12345678A")],
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "interesados[0]"
    assert "identificador" in response.json()["errors"][0]["message"]


async def test_staff_without_the_role_documentos_cannot_notify_a_document(
    platform: Platform,
    client: httpx.AsyncClient,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    solo = bearer(token(tenant, "notificaciones"))
    response = await client.post(
        URL,
        headers=solo,
        json={"documento_id": documento, "concepto": "R", "interesados": [persona()]},
    )
    assert response.status_code == 403
    assert await filas(platform, tenant) == 0


# --- the citizen ---


async def test_the_addressee_sees_only_sender_and_concepto_until_opening_it(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    lucia = persona()
    [creada] = await crear(client, personal, documento, lucia)
    suya = ciudadano(token, tenant, lucia["identificador"])
    mias = (await client.get(f"{URL}/mias", headers=suya)).json()
    assert [m["id"] for m in mias] == [creada["id"]]
    assert mias[0]["emisor"].startswith("Ayuntamiento de prueba")
    assert mias[0]["concepto"] == "Resolución de licencia de obra menor"
    assert mias[0]["documento"] is None
    # Somebody else sees nothing of it, and opening it is a 404.
    otro = ciudadano(token, tenant, nif())
    assert (await client.get(f"{URL}/mias", headers=otro)).json() == []
    response = await client.post(f"{URL}/{creada['id']}/acceder", headers=otro)
    assert response.status_code == 404
    assert await eventos(platform, tenant, PRACTICADA) == []

    clock.advance(timedelta(days=3, seconds=7))
    abierta = await client.post(f"{URL}/{creada['id']}/acceder", headers=suya)
    assert abierta.status_code == 200, abierta.text
    assert abierta.json()["estado"] == "practicada"
    assert abierta.json()["documento"]["documento_id"] == documento
    assert datetime.fromisoformat(abierta.json()["efectos_en"]) == clock.now()
    # Opening it again shows it again; it was practicada once.
    again = await client.post(f"{URL}/{creada['id']}/acceder", headers=suya)
    assert again.status_code == 200
    [evento] = await eventos(platform, tenant, PRACTICADA)
    assert evento["via"] == "acceso"
    assert evento["accedida_por"] == lucia["identificador"]
    assert datetime.fromisoformat(evento["fecha"]) == clock.now()
    assert evento["fecha_legal"] == "2026-11-05"
    # Once practicada, rejecting it is too late.
    late = await client.post(f"{URL}/{creada['id']}/rechazar", headers=suya)
    assert late.status_code == 409


async def test_the_recorded_representative_opens_it_for_the_represented(
    platform: Platform,
    client: httpx.AsyncClient,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    gestor = nif()
    [creada] = await crear(
        client,
        personal,
        documento,
        persona(
            representante={
                "tipo_identificador": "NIF",
                "identificador": gestor,
                "nombre": "Pablo Gestor",
            }
        ),
    )
    suyo = ciudadano(token, tenant, gestor)
    assert [m["id"] for m in (await client.get(f"{URL}/mias", headers=suyo)).json()] == [
        creada["id"]
    ]
    response = await client.post(f"{URL}/{creada['id']}/acceder", headers=suyo)
    assert response.status_code == 200
    [evento] = await eventos(platform, tenant, PRACTICADA)
    assert evento["accedida_por"] == gestor
    assert evento["destinatario"]["identificador"] != gestor


async def test_rejecting_it_is_rechazada_now(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    lucia = persona()
    [creada] = await crear(client, personal, documento, lucia)
    clock.advance(timedelta(hours=5))
    suya = ciudadano(token, tenant, lucia["identificador"])
    response = await client.post(f"{URL}/{creada['id']}/rechazar", headers=suya)
    assert response.status_code == 200
    assert response.json()["estado"] == "rechazada"
    assert response.json()["documento"] is None
    [evento] = await eventos(platform, tenant, RECHAZADA)
    assert evento["via"] == "rechazo"
    assert datetime.fromisoformat(evento["fecha"]) == clock.now()


async def test_a_citizen_token_without_nif_is_refused(
    client: httpx.AsyncClient, tenant: str, token: Callable[..., str]
) -> None:
    response = await client.get(f"{URL}/mias", headers=bearer(token(tenant, "ciudadano")))
    assert response.status_code == 403


async def test_another_tenant_sees_a_404(
    platform: Platform,
    client: httpx.AsyncClient,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
    new_tenant: Callable[..., Any],
) -> None:
    documento = await subir_documento(platform, personal)
    lucia = persona()
    [creada] = await crear(client, personal, documento, lucia)
    otra = await new_tenant()
    staff = bearer(token(otra, "notificaciones"))
    assert (await client.get(f"{URL}/{creada['id']}", headers=staff)).status_code == 404
    assert (await client.get(URL, headers=staff)).json()["items"] == []
    # The same person, logged in at another council, does not reach it either.
    misma = ciudadano(token, otra, lucia["identificador"])
    assert (await client.post(f"{URL}/{creada['id']}/acceder", headers=misma)).status_code == 404
    assert (await client.get(f"{URL}/{creada['id']}", headers=personal)).status_code == 200


async def test_staff_search_by_state_expediente_interesado_and_dates(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    lucia, pablo = persona(), postal()
    [a, b] = await crear(client, personal, documento, lucia, pablo)
    clock.advance(timedelta(days=1))
    [c] = await crear(client, personal, documento, persona())

    async def ids(**params: str) -> set[str]:
        response = await client.get(URL, headers=personal, params=params)
        assert response.status_code == 200, response.text
        return {n["id"] for n in response.json()["items"]}

    assert await ids() == {a["id"], b["id"], c["id"]}
    assert await ids(estado="en_reparto") == {b["id"]}
    assert await ids(interesado=lucia["identificador"]) == {a["id"]}
    assert await ids(expediente_id="EXP/2026/000017") == {a["id"], b["id"], c["id"]}
    assert await ids(expediente_id="EXP/2026/000099") == set()
    corte = (INICIO + timedelta(hours=12)).isoformat()
    assert await ids(desde=corte) == {c["id"]}
    assert await ids(hasta=corte) == {a["id"], b["id"]}
    assert (await client.get(URL, headers=ciudadano(token, tenant, nif()))).status_code == 403


# --- expiry (art. 43.2) ---


async def test_expiry_happens_at_the_tenth_day_to_the_second(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    lucia = persona()
    [creada] = await crear(client, personal, documento, lucia)
    vencedor = Vencedor(platform.runtimes["notificaciones"], clock)
    clock.set(INICIO + PLAZO - timedelta(seconds=1))
    await vencedor.una_pasada()
    assert await eventos(platform, tenant, EXPIRADA) == []
    clock.set(INICIO + PLAZO)
    assert await vencedor.una_pasada() >= 1
    [evento] = await eventos(platform, tenant, EXPIRADA)
    assert evento["notificacion_id"] == creada["id"]
    assert datetime.fromisoformat(evento["fecha"]) == INICIO + PLAZO
    assert evento["fecha_legal"] == "2026-11-12"
    assert datetime.fromisoformat(evento["puesta_en"]) == INICIO
    leida = (await client.get(f"{URL}/{creada['id']}", headers=personal)).json()
    assert leida["estado"] == "expirada"
    assert leida["fecha_legal"] == "2026-11-12"
    suya = ciudadano(token, tenant, lucia["identificador"])
    assert (await client.post(f"{URL}/{creada['id']}/acceder", headers=suya)).status_code == 409
    await vencedor.una_pasada()
    assert len(await eventos(platform, tenant, EXPIRADA)) == 1


async def test_opening_it_after_expiry_expires_it_even_before_the_scheduler_runs(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    lucia = persona()
    [creada] = await crear(client, personal, documento, lucia)
    clock.set(INICIO + PLAZO + timedelta(minutes=3))
    suya = ciudadano(token, tenant, lucia["identificador"])
    response = await client.post(f"{URL}/{creada['id']}/acceder", headers=suya)
    assert response.status_code == 409
    assert "art. 43.2" in response.json()["detail"]
    [evento] = await eventos(platform, tenant, EXPIRADA)
    assert datetime.fromisoformat(evento["fecha"]) == INICIO + PLAZO
    assert await eventos(platform, tenant, PRACTICADA) == []


async def test_opening_it_one_second_before_expiry_practices_it(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    tenant: str,
    personal: dict[str, str],
    token: Callable[..., str],
) -> None:
    documento = await subir_documento(platform, personal)
    lucia = persona()
    [creada] = await crear(client, personal, documento, lucia)
    clock.set(INICIO + PLAZO - timedelta(seconds=1))
    suya = ciudadano(token, tenant, lucia["identificador"])
    response = await client.post(f"{URL}/{creada['id']}/acceder", headers=suya)
    assert response.status_code == 200
    assert response.json()["fecha_legal"] == "2026-11-12"


# --- postal (art. 42.2, 44) ---


async def test_two_absences_lead_to_the_boe_and_publication_practices_it(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    tenant: str,
    personal: dict[str, str],
) -> None:
    documento = await subir_documento(platform, personal)
    [creada] = await crear(client, personal, documento, postal())
    assert creada["canal"] == "postal" and creada["estado"] == "en_reparto"
    assert creada["vence_en"] is None
    url = f"{URL}/{creada['id']}"
    clock.set(datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    primero = await client.post(
        f"{url}/intentos",
        headers=personal,
        json={"resultado": "ausente", "en": "2026-11-03T10:30:00+01:00"},
    )
    assert primero.json()["estado"] == "en_reparto"
    # Same side of 15:00: recorded, but it does not count.
    malo = await client.post(
        f"{url}/intentos",
        headers=personal,
        json={"resultado": "ausente", "en": "2026-11-04T12:30:00+01:00"},
    )
    assert malo.json()["estado"] == "en_reparto"
    assert malo.json()["intentos"][-1]["valido"] is False
    segundo = await client.post(
        f"{url}/intentos",
        headers=personal,
        json={"resultado": "ausente", "en": "2026-11-05T17:45:00+01:00"},
    )
    assert segundo.json()["estado"] == "pendiente_publicacion"
    assert [i["valido"] for i in segundo.json()["intentos"]] == [True, False, True]
    # No further attempts once it goes to the BOE.
    tarde = await client.post(
        f"{url}/intentos",
        headers=personal,
        json={
            "resultado": "entregada",
            "en": "2026-11-06T10:00:00+01:00",
            "receptor_nombre": "X",
            "receptor_nif": nif(),
        },
    )
    assert tarde.status_code == 409
    publicada = await client.post(
        f"{url}/publicacion",
        headers=personal,
        json={"fecha": "2026-11-09", "referencia": "BOE-N-2026-123456"},
    )
    assert publicada.status_code == 200, publicada.text
    assert publicada.json()["estado"] == "practicada"
    assert publicada.json()["fecha_legal"] == "2026-11-09"
    [evento] = await eventos(platform, tenant, PRACTICADA)
    assert evento["via"] == "publicacion"
    assert evento["fecha_legal"] == "2026-11-09"
    assert evento["canal"] == "postal"


async def test_a_delivery_practices_it_at_the_attempt_and_names_the_receiver(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: ControlledClock,
    personal: dict[str, str],
    tenant: str,
) -> None:
    documento = await subir_documento(platform, personal)
    [creada] = await crear(client, personal, documento, postal())
    clock.set(datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    url = f"{URL}/{creada['id']}/intentos"
    sin_receptor = await client.post(
        url, headers=personal, json={"resultado": "entregada", "en": "2026-11-04T09:10:00+01:00"}
    )
    assert sin_receptor.status_code == 422
    futuro = await client.post(
        url,
        headers=personal,
        json={"resultado": "ausente", "en": "2026-11-11T09:10:00+01:00"},
    )
    assert futuro.status_code == 422
    receptor = nif()
    entregada = await client.post(
        url,
        headers=personal,
        json={
            "resultado": "entregada",
            "en": "2026-11-04T09:10:00+01:00",
            "receptor_nombre": "Juan Vecino",
            "receptor_nif": receptor,
        },
    )
    assert entregada.json()["estado"] == "practicada"
    assert entregada.json()["intentos"][0]["receptor_nif"] == receptor
    [evento] = await eventos(platform, tenant, PRACTICADA)
    assert evento["via"] == "entrega"
    assert evento["fecha_legal"] == "2026-11-04"
    assert datetime.fromisoformat(evento["fecha"]) == datetime(2026, 11, 4, 8, 10, tzinfo=UTC)


async def test_a_publication_cannot_be_in_the_future_nor_for_an_electronic_one(
    platform: Platform, client: httpx.AsyncClient, personal: dict[str, str]
) -> None:
    documento = await subir_documento(platform, personal)
    [electronica] = await crear(client, personal, documento, persona())
    response = await client.post(
        f"{URL}/{electronica['id']}/publicacion",
        headers=personal,
        json={"fecha": "2026-11-02", "referencia": "BOE-N-2026-1"},
    )
    assert response.status_code == 409
    futura = await client.post(
        f"{URL}/{electronica['id']}/publicacion",
        headers=personal,
        json={"fecha": (date(2026, 11, 2) + timedelta(days=1)).isoformat(), "referencia": "X"},
    )
    assert futura.status_code == 422


async def test_a_number_for_a_date_is_refused_naming_the_field(
    platform: Platform, client: httpx.AsyncClient, personal: dict[str, str]
) -> None:
    # pydantic took 0 for 1970-01-01 (a Unix time): fuzzing found the attempt recorded.
    documento = await subir_documento(platform, personal)
    [creada] = await crear(client, personal, documento, postal())
    url = f"{URL}/{creada['id']}"
    for path, body, campo in (
        ("intentos", {"resultado": "ausente", "en": 0}, "en"),
        ("publicacion", {"fecha": 0, "referencia": "BOE-N-2026-1"}, "fecha"),
    ):
        response = await client.post(f"{url}/{path}", headers=personal, json=body)
        assert response.status_code == 422, response.text
        assert campo in [e["field"] for e in response.json()["errors"]]
    assert (await client.get(url, headers=personal)).json()["intentos"] == []


async def test_staff_print_the_postal_notification_and_its_acuse(
    platform: Platform,
    client: httpx.AsyncClient,
    personal: dict[str, str],
    token: Callable[..., str],
    tenant: str,
) -> None:
    documento = await subir_documento(platform, personal)
    [papel, electronica] = await crear(client, personal, documento, postal(), persona())
    workers = record_documents(platform)
    response = await client.get(f"{URL}/{papel['id']}/impreso", headers=personal)
    assert response.status_code == 200
    # Printed by a document worker, not on the loop that serves the request.
    assert workers == ["impreso_postal"]
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert (
        await client.get(f"{URL}/{electronica['id']}/impreso", headers=personal)
    ).status_code == 409
    ciudadana = ciudadano(token, tenant, papel["interesado"]["identificador"])
    assert (await client.get(f"{URL}/{papel['id']}/impreso", headers=ciudadana)).status_code == 403


async def test_the_tramitador_command_is_checked_with_the_repositorio_over_the_bus(
    platform: Platform, tenant: str, personal: dict[str, str]
) -> None:
    """The command names a document: notificaciones asks the repositorio about it over
    the bus (services hold no credential of each other) and notifies it once it is known
    to exist, pinning the version; a document that does not exist, or an interesado with
    no channel, is answered with ``fallida`` naming why, never a silent dead letter."""
    runtime = platform.runtimes["notificaciones"]
    documento = await subir_documento(platform, personal)
    empresa = {"tipo_identificador": "CIF", "identificador": CIF, "nombre": "Garajes SL"}
    electronica = {
        "tipo_identificador": "NIF",
        "identificador": nif(),
        "nombre": "Lucía",
        "apellido1": "García",
        "apellido2": None,
        "eligio_electronico": True,
    }
    datos = {
        "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-0000000000a1",
        "solicitante": "tramitador",
        "expediente_id": "0195a3c5-1a2b-7c3d-9e4f-5a6b7c8d9e0f",
        "numero": "EXP/2026/000001",
        "asunto": "Resolución del expediente EXP/2026/000001: estimada",
        "documento": {"plantilla": "resolucion", "documento_id": documento},
        "interesados": [empresa, electronica],
    }
    runtime.contracts.validate(service.SOLICITAR_NOTIFICACION, datos)
    actor = Actor.system("tramitador")

    async def solicitar(data: dict[str, Any]) -> list[Any]:
        async with runtime.unit_of_work(tenant, actor) as uow:
            return await service.solicitar_notificacion(
                uow, datos=data, emisor="Ayuntamiento", ahora=INICIO
            )

    # Nothing is put at disposal before the repositorio answers.
    assert await solicitar(datos) == []
    assert await solicitar(datos) == []
    [consulta] = await eventually(
        lambda: eventos(platform, tenant, service.CONSULTAR_DOCUMENTO), timeout=30
    )
    assert consulta == {
        "solicitud_id": datos["solicitud_id"],
        "solicitante": "notificaciones",
        "documento_id": documento,
    }

    async def puestas() -> list[dict[str, Any]]:
        found = await eventos(platform, tenant, PUESTA)
        return found if len(found) == 2 else []

    await eventually(puestas, timeout=30)
    primeras = await solicitar(datos)  # a redelivery answers what exists
    assert len(primeras) == 2
    assert {(n.origen, n.canal, n.estado) for n in primeras} == {
        ("tramitador", "electronico", "puesta_disposicion")
    }
    assert {n.interesado.nombre for n in primeras} == {"Garajes SL", "Lucía García"}
    assert {(n.documento.version, n.documento.nombre) for n in primeras} == {(1, "resolucion.pdf")}
    assert await filas(platform, tenant) == 2

    # A document the council's repositorio does not hold: fallida for each interesado.
    inexistente = "0195a3c5-0000-7000-8000-00000000d0c1"
    otra = {
        **datos,
        "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-0000000000a2",
        "documento": {"plantilla": "resolucion", "documento_id": inexistente},
    }
    assert await solicitar(otra) == []

    async def fallidas() -> list[dict[str, Any]]:
        found = await eventos(platform, tenant, FALLIDA)
        return found if len(found) == 2 else []

    for fallida in await eventually(fallidas, timeout=30):
        assert fallida["codigo"] == "documento-no-encontrado"
        assert inexistente in fallida["motivo"]
        assert fallida["solicitud_id"] == otra["solicitud_id"]
        assert fallida["expediente_id"] == datos["expediente_id"]
    assert len(await eventos(platform, tenant, PUESTA)) == 2

    # Somebody who can only be notified on paper and has no address: fallida at once.
    sin_direccion = {
        **datos,
        "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-0000000000a3",
        "interesados": [empresa, {**electronica, "eligio_electronico": False}],
    }
    [sin_canal] = await solicitar(sin_direccion)
    assert (sin_canal.estado, sin_canal.interesado.identificador) == (
        "fallida",
        electronica["identificador"],
    )
    ultima = (await eventos(platform, tenant, FALLIDA))[-1]
    assert ultima["codigo"] == "sin-datos-de-canal"
    assert electronica["identificador"] in ultima["motivo"]
    assert [n.id for n in await solicitar(sin_direccion)] == [sin_canal.id]
    assert len(await eventos(platform, tenant, PUESTA)) == 2

    # A command naming no document cannot be answered at all: dead-lettered.
    sin_documento = {
        **datos,
        "solicitud_id": "0195a3c5-1a2b-7c3d-9e4f-0000000000a4",
        "documento": {"plantilla": "resolucion", "documento_id": None},
    }
    with pytest.raises(PermanentFailure, match="documento_id"):
        await solicitar(sin_documento)
    assert "consultas" in [c.name for c in runtime.consumers]
    assert "solicitudes" in [c.name for c in runtime.consumers]
