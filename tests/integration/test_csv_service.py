"""The csv service wired as the platform wires it: codes reserved by command, activated and
annulled by the repositorio's events, and verified in public through its pages."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.bootstrap import Platform, build_platform
from services.common.bus.envelope import EventName, build_envelope, parse_envelope
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.transport import Delivery, OutgoingMessage
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.csv import api, domain, pages, service
from services.csv.models import codigos
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

RESERVAR = "csv.codigo.reservar.v1"
RESERVADO = "csv.codigo.reservado.v1"
EMITIDO = "repositorio.documento.emitido.v1"
FALLIDA = "repositorio.emision.fallida.v1"
JSON = {"Accept": "application/json"}


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    running = await build_platform(settings, ["csv"], transport=InProcessTransport())
    await running.runtimes["csv"].start()
    yield running
    await running.close()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    # As served behind the gateway: the peer (the gateway) is a trusted proxy, so the
    # server takes the client's address from X-Forwarded-For.
    app = ProxyHeadersMiddleware(platform.apps["csv"], trusted_hosts=["127.0.0.1"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


def address() -> dict[str, str]:
    """A client address of its own, so no test spends another's miss allowance."""
    n = uuid.uuid4().int
    return {"X-Forwarded-For": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250}"}


async def publish(platform: Platform, tenant: str, name: str, data: dict[str, Any]) -> None:
    envelope = build_envelope(
        EventName.parse(name),
        tenant=tenant,
        data=data,
        dataschema=platform.contracts.schema_uri(name),
    )
    await platform.transport.publish(
        OutgoingMessage(
            routing_key=f"{tenant}.{name}",
            body=json.dumps(envelope).encode(),
            message_id=envelope["id"],
        )
    )


async def collect_replies(platform: Platform, tenant: str) -> list[Any]:
    received: list[Any] = []

    async def on_message(delivery: Delivery) -> None:
        received.append(parse_envelope(delivery.body))
        await delivery.ack()

    await platform.transport.subscribe(
        f"pruebas.{uuid.uuid4().hex}", [f"{tenant}.{RESERVADO}"], on_message
    )
    return received


async def reserve(
    platform: Platform, tenant: str, *, solicitud_id: str | None = None, documento_id: str
) -> dict[str, Any]:
    """Sends the reservation command and returns the reply's data."""
    replies = await collect_replies(platform, tenant)
    solicitud = solicitud_id or str(uuid.uuid4())
    await publish(
        platform,
        tenant,
        RESERVAR,
        {"solicitud_id": solicitud, "solicitante": "repositorio", "documento_id": documento_id},
    )
    await eventually(lambda: replies)
    data: dict[str, Any] = replies[0].data
    return data


def emitido(csv: str, documento_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "documento_id": documento_id,
        "version": 2,
        "csv": csv,
        "url_verificacion": f"http://127.0.0.1:8000/verificar/{csv}",
        "sha256": "5d" * 32,
        "tamano": 48_213,
        "nombre_fichero": "justificante-E-2026-000042.pdf",
        "identificador": "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4",
        "tipo_documental": "TD09",
        "organo": "L01030149",
        "emitido_en": "2026-07-01T08:30:00+00:00",
        "firmante": "Sello electrónico de Ayuntamiento de prueba",
        "sello_tiempo": "2026-07-01T08:29:58+00:00",
        **extra,
    }


async def state(platform: Platform, tenant: str, csv: str) -> str | None:
    async with tenant_transaction(platform.db, tenant) as session:
        found = await session.execute(select(codigos.c.estado).where(codigos.c.csv == csv))
        return found.scalar_one_or_none()


async def issued_code(platform: Platform, tenant: str) -> tuple[str, str]:
    """A code reserved and activated, as the repositorio's saga leaves it."""
    documento_id = str(uuid.uuid4())
    reply = await reserve(platform, tenant, documento_id=documento_id)
    csv = reply["csv"]
    await publish(platform, tenant, EMITIDO, emitido(csv, documento_id))

    async def active() -> bool:
        return await state(platform, tenant, csv) == "activo"

    await eventually(active)
    return csv, documento_id


# --- reserving ------------------------------------------------------------------------------


async def test_reservation_command_is_answered_with_a_fresh_reserved_code(
    platform, client, settings, new_tenant
) -> None:
    tenant = await new_tenant()
    documento_id, solicitud_id = str(uuid.uuid4()), str(uuid.uuid4())
    reply = await reserve(platform, tenant, solicitud_id=solicitud_id, documento_id=documento_id)
    csv = reply["csv"]
    assert domain.PATRON.match(csv) and domain.es_valido(csv)
    assert reply["solicitud_id"] == solicitud_id
    assert reply["documento_id"] == documento_id
    assert reply["solicitante"] == "repositorio"
    assert reply["url_verificacion"] == f"{settings.public_base_url}/verificar/{csv}"
    assert await state(platform, tenant, csv) == "reservado"
    # Reserved is not valid yet: nothing to verify.
    pending = await client.get(f"/api/v1/csv/verificar/{csv}", headers=address())
    assert pending.status_code == 404
    async with tenant_transaction(platform.db, tenant) as session:
        audit = (await session.execute(select(platform.runtimes["csv"].tables.audit_log))).all()
    assert [(a.action, a.entity_id) for a in audit] == [("reservar", csv)]


async def test_the_same_solicitud_gets_the_same_code_however_often_it_asks(
    platform, new_tenant
) -> None:
    tenant = await new_tenant()
    documento_id, solicitud_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = await reserve(platform, tenant, solicitud_id=solicitud_id, documento_id=documento_id)
    again = await reserve(platform, tenant, solicitud_id=solicitud_id, documento_id=documento_id)
    assert again["csv"] == first["csv"]
    async with tenant_transaction(platform.db, tenant) as session:
        rows = (await session.execute(select(codigos.c.csv))).all()
    assert [r.csv for r in rows] == [first["csv"]]


async def test_a_colliding_draw_is_drawn_again(platform, new_tenant) -> None:
    owner, other = await new_tenant(), await new_tenant()
    taken = (await reserve(platform, owner, documento_id=str(uuid.uuid4())))["csv"]
    fresh = domain.generar_codigo()
    draws = iter([taken, fresh])
    runtime = platform.runtimes["csv"]
    async with runtime.unit_of_work(other, Actor.system("pruebas")) as uow:
        got = await service.reservar_codigo(
            uow,
            solicitud_id=str(uuid.uuid4()),
            solicitante="pruebas",
            documento_id=str(uuid.uuid4()),
            base_url="https://sede.example",
            generar=lambda: next(draws),
        )
    assert got == fresh
    # The other tenant's code is untouched and still its own.
    assert await state(platform, owner, taken) == "reservado"
    assert await state(platform, other, taken) is None
    assert await state(platform, other, fresh) == "reservado"


# --- activating and annulling ---------------------------------------------------------------


async def test_an_issued_document_verifies_with_its_facts_and_download_link(
    platform, client, new_tenant
) -> None:
    tenant = await new_tenant()
    csv, _ = await issued_code(platform, tenant)
    page = await client.get(f"/api/v1/csv/verificar/{csv}", headers=address())
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for shown in (
        f"Ayuntamiento de prueba {tenant}",
        "justificante-E-2026-000042.pdf",
        "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4",
        "Acuse de recibo (TD09)",
        "L01030149",
        "1 de julio de 2026, 10:30:00",
        "1 de julio de 2026, 10:29:58",
        "Sello electrónico de Ayuntamiento de prueba",
        "5d" * 32,
        "48.213 bytes",
        f'href="{csv}/documento"',
    ):
        assert shown in html, shown
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"

    as_json = await client.get(f"/api/v1/csv/verificar/{csv}", headers={**JSON, **address()})
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    body = as_json.json()
    assert body["csv"] == csv
    assert body["entidad"] == f"Ayuntamiento de prueba {tenant}"
    assert body["sha256"] == "5d" * 32 and body["tamano"] == 48_213
    assert body["tipo_documental_nombre"] == "Acuse de recibo (TD09)"
    assert body["url_descarga"].endswith(f"/verificar/{csv}/documento")
    assert as_json.headers["cache-control"] == "no-store"

    # However it was typed into the address bar, it is the same document.
    typed = csv.lower().replace("-", "")
    again = await client.get(f"/api/v1/csv/verificar/{typed}", headers={**JSON, **address()})
    assert again.status_code == 200 and again.json()["csv"] == csv


async def test_a_failed_emision_annuls_its_code_for_good(platform, client, new_tenant) -> None:
    tenant = await new_tenant()
    documento_id = str(uuid.uuid4())
    csv = (await reserve(platform, tenant, documento_id=documento_id))["csv"]
    await publish(
        platform,
        tenant,
        FALLIDA,
        {
            "documento_id": documento_id,
            "csv": csv,
            "motivo": "Sin sello",
            "codigo": "sin-certificado",
        },
    )

    async def annulled() -> bool:
        return await state(platform, tenant, csv) == "anulado"

    await eventually(annulled)
    gone = await client.get(f"/api/v1/csv/verificar/{csv}", headers={**JSON, **address()})
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")

    # An emitido for an annulled code cannot be made right: an operator sees it.
    await publish(platform, tenant, EMITIDO, emitido(csv, documento_id))
    runtime = platform.runtimes["csv"]

    async def dead_letter() -> Any:
        async with platform.db.sessions() as session:
            rows = await session.execute(
                select(runtime.tables.dead_letters.c.reason).where(
                    runtime.tables.dead_letters.c.tenant_id == tenant
                )
            )
            return rows.scalars().all()

    reasons = await eventually(dead_letter)
    assert "anulado" in reasons[0]
    assert await state(platform, tenant, csv) == "anulado"


async def test_an_emitido_for_another_documento_does_not_activate(platform, new_tenant) -> None:
    tenant = await new_tenant()
    csv = (await reserve(platform, tenant, documento_id=str(uuid.uuid4())))["csv"]
    await publish(platform, tenant, EMITIDO, emitido(csv, str(uuid.uuid4())))
    runtime = platform.runtimes["csv"]

    async def dead_letter() -> Any:
        async with platform.db.sessions() as session:
            rows = await session.execute(
                select(runtime.tables.dead_letters.c.reason).where(
                    runtime.tables.dead_letters.c.tenant_id == tenant
                )
            )
            return rows.scalars().all()

    reasons = await eventually(dead_letter)
    assert "se reservó para el documento" in reasons[0]
    assert await state(platform, tenant, csv) == "reservado"


# --- public pages ---------------------------------------------------------------------------


async def test_the_form_sends_people_to_the_code_page(client) -> None:
    form = await client.get("/api/v1/csv/verificar")
    assert form.status_code == 200
    assert '<label for="csv">' in form.text and 'action="verificar"' in form.text
    assert form.headers["cache-control"] == "no-store"
    code = domain.generar_codigo()
    typed = " ".join(code.lower().split("-"))
    sent = await client.get("/api/v1/csv/verificar", params={"csv": typed})
    assert sent.status_code == 303
    assert sent.headers["location"] == f"verificar/{code}"
    wrong = await client.get("/api/v1/csv/verificar", params={"csv": code[:-1] + "O"})
    assert wrong.status_code == 400
    assert "no puede contener O" in wrong.text
    assert 'aria-invalid="true"' in wrong.text


async def test_a_mistyped_code_is_a_400_without_any_lookup(client, monkeypatch) -> None:
    async def no_lookup(*_: Any) -> None:
        raise AssertionError("a malformed code must not be looked up")

    monkeypatch.setattr(service, "consultar", no_lookup)
    code = domain.generar_codigo()
    swapped = code[:-2] + code[-1] + code[-2] if code[-1] != code[-2] else code[:-1] + "?"
    page = await client.get(f"/api/v1/csv/verificar/{swapped}", headers=address())
    assert page.status_code == 400
    assert "Código mal escrito" in page.text
    assert page.headers["cache-control"] == "no-store"
    problem = await client.get(f"/api/v1/csv/verificar/{swapped}", headers={**JSON, **address()})
    assert problem.status_code == 400
    assert problem.headers["content-type"].startswith("application/problem+json")
    body = problem.json()
    assert "mal escrito" in body["detail"]
    assert body["errors"][0]["field"] == "csv"


async def test_an_unknown_code_is_a_404(client) -> None:
    code = domain.generar_codigo()
    page = await client.get(f"/api/v1/csv/verificar/{code}", headers=address())
    assert page.status_code == 404
    assert "No hay ningún documento con este código" in page.text
    assert code in page.text
    problem = await client.get(f"/api/v1/csv/verificar/{code}", headers={**JSON, **address()})
    assert problem.status_code == 404
    assert problem.json()["type"].endswith("/csv-no-encontrado")


async def test_repeated_misses_from_one_client_are_throttled(
    platform, client, settings, new_tenant
) -> None:
    tenant = await new_tenant()
    csv, _ = await issued_code(platform, tenant)
    guesser = address()
    for _ in range(settings.verificar_misses_per_minute):
        miss = await client.get(f"/api/v1/csv/verificar/{domain.generar_codigo()}", headers=guesser)
        assert miss.status_code == 404
    blocked = await client.get(
        f"/api/v1/csv/verificar/{domain.generar_codigo()}", headers={**JSON, **guesser}
    )
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.headers["content-type"].startswith("application/problem+json")
    # While blocked, even a real code tells the guesser nothing.
    hit_blocked = await client.get(f"/api/v1/csv/verificar/{csv}", headers=guesser)
    assert hit_blocked.status_code == 429
    assert "Demasiados intentos" in hit_blocked.text
    # Others are not affected, and hits never count.
    someone = address()
    for _ in range(settings.verificar_misses_per_minute + 2):
        hit = await client.get(f"/api/v1/csv/verificar/{csv}", headers=someone)
        assert hit.status_code == 200


async def test_a_code_verifies_publicly_but_stays_its_tenants_row(
    platform, client, new_tenant
) -> None:
    owner, other = await new_tenant(), await new_tenant()
    csv, _ = await issued_code(platform, owner)
    public = await client.get(f"/api/v1/csv/verificar/{csv}", headers={**JSON, **address()})
    assert public.status_code == 200
    assert public.json()["entidad"] == f"Ayuntamiento de prueba {owner}"
    assert await state(platform, owner, csv) == "activo"
    assert await state(platform, other, csv) is None
    async with tenant_transaction(platform.db, other) as session:
        assert (await session.execute(select(codigos))).all() == []
    # Without a tenant the app role sees no row at all; only the function looks across.
    async with platform.db.sessions() as session, session.begin():
        assert (await session.execute(select(codigos))).all() == []
        through = await session.execute(text("SELECT csv FROM csv.verificar(:c)"), {"c": csv})
        assert through.scalars().all() == [csv]


# --- a hit and a miss cost the same ---------------------------------------------------------


def _spy(calls: list[str], name: str, target: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return target(*args, **kwargs)

    return wrapper


async def test_a_hit_and_a_miss_run_the_same_code_path(
    platform, client, new_tenant, monkeypatch
) -> None:
    tenant = await new_tenant()
    csv, _ = await issued_code(platform, tenant)
    calls: list[str] = []
    real_lookup = service.consultar

    async def lookup(*args: Any) -> Any:
        calls.append("consultar")
        return await real_lookup(*args)

    monkeypatch.setattr(service, "consultar", lookup)
    for module, name in (
        (api, "_vista"),
        (api, "problem_response"),
        (api, "JSONResponse"),
        (pages, "pagina_documento"),
        (pages, "pagina_no_encontrado"),
    ):
        monkeypatch.setattr(module, name, _spy(calls, name, getattr(module, name)))

    paths: dict[tuple[str, bool], list[str]] = {}
    for label, code in (("hit", csv), ("miss", domain.generar_codigo())):
        for as_json in (False, True):
            calls.clear()
            headers = {**address(), **(JSON if as_json else {})}
            answer = await client.get(f"/api/v1/csv/verificar/{code}", headers=headers)
            assert answer.status_code == (200 if label == "hit" else 404)
            paths[(label, as_json)] = list(calls)
    assert paths[("hit", False)] == paths[("miss", False)]
    assert paths[("hit", True)] == paths[("miss", True)]
    assert paths[("hit", False)] == [
        "consultar",
        "_vista",
        "pagina_documento",
        "pagina_no_encontrado",
    ]
    assert paths[("hit", True)] == ["consultar", "_vista", "JSONResponse", "problem_response"]


async def test_benchmark_hit_and_miss_timings(platform, client, new_tenant) -> None:
    """Prints how long hits and misses take (run with -s to see); asserts only the answers."""
    tenant = await new_tenant()
    csv, _ = await issued_code(platform, tenant)
    timings: dict[str, list[float]] = {"hit": [], "miss": []}
    for _ in range(40):
        for label, code in (("hit", csv), ("miss", domain.generar_codigo())):
            started = time.perf_counter()
            answer = await client.get(f"/api/v1/csv/verificar/{code}", headers=address())
            timings[label].append(time.perf_counter() - started)
            assert answer.status_code == (200 if label == "hit" else 404)
    hit, miss = (statistics.median(timings[k]) * 1000 for k in ("hit", "miss"))
    print(
        f"\n[csv verificar] median hit {hit:.2f} ms, miss {miss:.2f} ms, "
        f"difference {abs(hit - miss):.2f} ms over {len(timings['hit'])} pairs "
        f"({datetime.now(UTC):%Y-%m-%d})"
    )
