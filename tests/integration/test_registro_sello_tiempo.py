"""The register date-time time-stamped, end to end on real PostgreSQL and the in-process bus:
the registro and the sellado run together; every asiento's canonical bytes are kept and
stamped by the sellado's own TSA, and OpenSSL verifies the token against those bytes and
the TSA's root, as any third party would. Also: tampered bytes fail, a rejection is
recorded and can be retried, another tenant sees a 404, and redeliveries change nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms
from lxml import etree
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.bootstrap import Platform
from services.common.bus.envelope import EventName, ReceivedEvent, build_envelope
from services.common.db import asyncpg_url, tenant_transaction
from services.common.settings import Settings
from services.registro import handlers
from services.registro.asientos.schemas import AsientoRead
from services.registro.intercambios import sicres
from services.registro.sellos_tiempo import service as sello_tiempo
from services.registro.sellos_tiempo.domain import solicitud_id
from services.registro.sellos_tiempo.models import sellos_tiempo
from services.sellado.tsa import TimeStampAuthority
from tests.support import factories
from tests.support.platforms import (
    DirectDelivery,
    asgi_client,
    bearer,
    collect_events,
    running_platform,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

REGISTRADO = "registro.asiento.registrado.v1"
SOLICITAR = "sellado.sellotiempo.solicitar.v1"
EMITIDO = "sellado.sellotiempo.emitido.v1"
RECHAZADO = "sellado.sellotiempo.rechazado.v1"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro", "sellado"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


@pytest.fixture
async def trust_files(platform: Platform, tmp_path: Path) -> Path:
    """The TSA's chain and trust root, fetched from the sellado as a verifier would."""
    async with asgi_client(platform.apps["sellado"]) as sellado:
        chain = await sellado.get("/api/v1/sellado/tsa/chain.pem")
        root = await sellado.get("/api/v1/sellado/pki/ca.pem")
    assert chain.status_code == root.status_code == 200
    (tmp_path / "chain.pem").write_bytes(chain.content)
    (tmp_path / "ca.pem").write_bytes(root.content)
    return tmp_path


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("openssl")
    assert binary, "openssl is needed on PATH"
    return subprocess.run(
        [binary, *map(str, args)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
        check=False,
    )


def verify(files: Path, datos: Path, token: Path) -> subprocess.CompletedProcess[str]:
    """``openssl ts -verify`` of a bare token against the data, trusting only the root."""
    return openssl(
        "ts",
        "-verify",
        "-data",
        datos,
        "-in",
        token,
        "-token_in",
        "-CAfile",
        files / "ca.pem",
        "-untrusted",
        files / "chain.pem",
    )


def gen_time_of(token: bytes) -> datetime:
    """The genTime of a DER TimeStampToken, read independently of the code under test."""
    signed = cms.ContentInfo.load(token)["content"]
    value: datetime = signed["encap_content_info"]["content"].parsed["gen_time"].native
    return value


async def register(client: httpx.AsyncClient, token: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/registro/asientos", json=factories.asiento(**overrides), headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def url(asiento_id: str, path: str = "") -> str:
    return f"/api/v1/registro/asientos/{asiento_id}/sello-tiempo{path}"


async def settled(client: httpx.AsyncClient, token: str, asiento_id: str) -> httpx.Response:
    """The time-stamp's state once it is no longer pending."""

    async def answered() -> httpx.Response | None:
        response = await client.get(url(asiento_id), headers=bearer(token))
        return response if response.status_code != 202 else None

    response: httpx.Response = await eventually(answered)
    return response


async def audit_actions(platform: Platform, tenant: str) -> list[str]:
    audit = platform.runtimes["registro"].tables.audit_log
    async with tenant_transaction(platform.db, tenant) as session:
        rows = await session.execute(
            select(audit.c.action).where(audit.c.entity == "sello_tiempo").order_by(audit.c.id)
        )
    return list(rows.scalars())


async def row_of(platform: Platform, tenant: str, asiento_id: str) -> Any:
    async with tenant_transaction(platform.db, tenant) as session:
        return (
            await session.execute(
                select(sellos_tiempo).where(sellos_tiempo.c.asiento_id == asiento_id)
            )
        ).first()


async def deliver(platform: Platform, consumer: str, event: ReceivedEvent | dict[str, Any]) -> None:
    """Hands an event to one of the registro's consumers, as a (re)delivery would."""
    if isinstance(event, ReceivedEvent):
        name = str(event.name)
        envelope = build_envelope(
            EventName.parse(name),
            tenant=event.tenant,
            data=event.data,
            dataschema=platform.contracts.schema_uri(name),
        )
    else:
        envelope = event
        name = str(EventName.from_type(envelope["type"]))
    spec = next(s for s in handlers.consumers(None) if s.name == consumer)
    delivery = DirectDelivery(envelope, name)
    await platform.runtimes["registro"].event_consumer(spec).on_delivery(delivery)
    assert delivery.acked


async def test_each_asiento_is_time_stamped_and_openssl_verifies_it(
    platform, client, trust_files, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro"))
    commands = await collect_events(platform.transport, f"{tenant}.{SOLICITAR}")
    asiento = await register(
        client,
        token(tenant, "registro"),
        resumen="Solicitud de licencia de obra menor en la calle Peñíscola, 3",
        interesados=[factories.interesado(nombre="Núria", apellido1="Peñalver")],
    )

    response = await settled(client, token(tenant, "registro"), asiento["id"])
    assert response.status_code == 200, response.text
    sello = response.json()
    assert sello["estado"] == "sellado"
    assert (sello["algoritmo"], sello["intento"]) == ("sha256", 1)

    datos = await client.get(url(asiento["id"], "/datos"), headers=headers)
    assert datos.status_code == 200
    assert datos.headers["content-type"] == "application/json"
    # The exact bytes: the asiento as recorded, canonical JSON, and their hash is the huella.
    recorded = await client.get(f"/api/v1/registro/asientos/{asiento['id']}", headers=headers)
    expected = {k: v for k, v in recorded.json().items() if k not in ("estado", "anulacion")}
    assert datos.content == json.dumps(
        expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert "Peñíscola".encode() in datos.content  # UTF-8, not \u escapes
    assert sello["huella"] == hashlib.sha256(datos.content).hexdigest()
    assert len(commands) == 1
    command = commands[0]
    assert command.data["huella"] == sello["huella"]
    assert command.data["referencia"] == {
        "tipo": "asiento",
        "id": asiento["id"],
        "numero": asiento["numero"],
    }
    assert command.data["solicitud_id"] == solicitud_id(asiento["id"])

    tst = await client.get(url(asiento["id"], "/token"), headers=headers)
    assert tst.status_code == 200
    assert tst.headers["content-type"] == "application/octet-stream"
    numero = asiento["numero"].replace("/", "-")
    assert f'filename="asiento-{numero}.tst"' in tst.headers["content-disposition"]
    assert base64.b64decode(sello["token"]) == tst.content

    files = trust_files
    (files / "datos.json").write_bytes(datos.content)
    (files / "asiento.tst").write_bytes(tst.content)
    verified = verify(files, files / "datos.json", files / "asiento.tst")
    assert verified.returncode == 0, verified.stderr
    assert "Verification: OK" in verified.stdout

    # genTime is the TSA's, a moment after the server took the register date-time.
    fecha_registro = datetime.fromisoformat(asiento["fecha_registro"])
    gen_time = gen_time_of(tst.content)
    assert datetime.fromisoformat(sello["gen_time"]) == gen_time
    assert timedelta(0) <= gen_time - fecha_registro < timedelta(seconds=10)
    assert sello["desfase_ms"] == round((gen_time - fecha_registro).total_seconds() * 1000)
    assert int(sello["serial"]) > 0

    # One byte changed in the data and the token no longer proves it.
    tampered = datos.content.replace(b"Pe\xc3\xb1\xc3\xadscola", b"Pe\xc3\xb1\xc3\xadscolb")
    assert tampered != datos.content
    (files / "manipulado.json").write_bytes(tampered)
    refused = verify(files, files / "manipulado.json", files / "asiento.tst")
    assert refused.returncode != 0
    assert "Verification: FAILED" in refused.stdout
    assert "message imprint mismatch" in refused.stderr

    # The SICRES export's accessor hands out the same DER token.
    async with tenant_transaction(platform.db, tenant) as session:
        assert await sello_tiempo.token_de(session, asiento_id=asiento["id"]) == tst.content
    assert await audit_actions(platform, tenant) == ["solicitar-sello-tiempo", "sellar-tiempo"]

    # What was stamped stays, whatever happens to the asiento afterwards.
    annulled = await client.post(
        f"/api/v1/registro/asientos/{asiento['id']}/anular",
        json={"motivo": "Duplicado del asiento anterior"},
        headers=headers,
    )
    assert annulled.status_code == 200, annulled.text
    again = await client.get(url(asiento["id"], "/datos"), headers=headers)
    assert again.content == datos.content
    assert AsientoRead.model_validate(annulled.json()).estado.value == "anulado"


class _BrokenSerials:
    """A serial source whose database is down: the TSA answers systemFailure."""

    async def next(self) -> int:
        raise ConnectionError("la base de datos de números de serie no responde")


async def test_a_rejection_is_recorded_and_can_be_asked_for_again(
    platform, client, trust_files, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "registro"))
    trust = platform.apps["sellado"].state.sellado
    working: TimeStampAuthority = trust.tsa
    trust.tsa = TimeStampAuthority(
        working.keypair, policy_oid=working.policy_oid, serials=_BrokenSerials()
    )
    try:
        asiento = await register(client, token(tenant, "registro"))
        response = await settled(client, token(tenant, "registro"), asiento["id"])
    finally:
        trust.tsa = working
    assert response.status_code == 200
    failed = response.json()
    assert failed["estado"] == "fallido"
    assert failed["codigo"] == "error-interno"
    assert "autoridad de sellado de tiempo" in failed["motivo"]
    assert failed["token"] is None and failed["gen_time"] is None

    no_token = await client.get(url(asiento["id"], "/token"), headers=headers)
    assert no_token.status_code == 409
    assert no_token.headers["content-type"].startswith("application/problem+json")
    assert no_token.json()["reintentar"] == url(asiento["id"], "/reintentar")
    # The bytes to stamp are kept already, and a retry stamps exactly them.
    datos = (await client.get(url(asiento["id"], "/datos"), headers=headers)).content
    assert hashlib.sha256(datos).hexdigest() == failed["huella"]

    retried = await client.post(url(asiento["id"], "/reintentar"), headers=headers)
    assert retried.status_code == 202, retried.text
    assert retried.headers["retry-after"] == "2"
    assert retried.json()["estado"] == "pendiente"
    assert retried.json()["intento"] == 2
    sealed = await settled(client, token(tenant, "registro"), asiento["id"])
    assert sealed.json()["estado"] == "sellado"
    assert sealed.json()["huella"] == failed["huella"]
    row = await row_of(platform, tenant, asiento["id"])
    assert row.solicitud_id == solicitud_id(asiento["id"], 2)

    (trust_files / "datos.json").write_bytes(datos)
    tst = await client.get(url(asiento["id"], "/token"), headers=headers)
    (trust_files / "asiento.tst").write_bytes(tst.content)
    verified = verify(trust_files, trust_files / "datos.json", trust_files / "asiento.tst")
    assert verified.returncode == 0, verified.stderr

    again = await client.post(url(asiento["id"], "/reintentar"), headers=headers)
    assert again.status_code == 409
    assert await audit_actions(platform, tenant) == [
        "solicitar-sello-tiempo",
        "fallar-sello-tiempo",
        "reintentar-sello-tiempo",
        "sellar-tiempo",
    ]


class _Gated:
    """The sellado's TSA held until the test opens the gate: its request stays pending."""

    def __init__(self, tsa: TimeStampAuthority) -> None:
        self.tsa = tsa
        self.keypair = tsa.keypair
        self.gate = asyncio.Event()

    async def respond(self, request_der: bytes) -> bytes:
        await self.gate.wait()
        return await self.tsa.respond(request_der)


@asynccontextmanager
async def tsa_held(platform: Platform) -> AsyncIterator[_Gated]:
    """While inside, the sellado's time-stamps wait; on leaving they go through again."""
    trust = platform.apps["sellado"].state.sellado
    working = trust.tsa
    gated = _Gated(working)
    trust.tsa = gated
    try:
        yield gated
    finally:
        gated.gate.set()
        trust.tsa = working


def reply_in(
    platform: Platform, tenant: str, reply: ReceivedEvent, solicitud: str
) -> dict[str, Any]:
    """``reply`` re-sent in ``tenant``'s name for request ``solicitud``."""
    return build_envelope(
        EventName.parse(EMITIDO),
        tenant=tenant,
        data={**reply.data, "solicitud_id": solicitud},
        dataschema=platform.contracts.schema_uri(EMITIDO),
    )


async def test_another_tenants_time_stamp_is_404_and_its_replies_do_not_cross(
    platform, client, new_tenant, token
) -> None:
    a, b = await new_tenant(), await new_tenant()
    replies = await collect_events(platform.transport, f"{a}.{EMITIDO}")
    asiento = await register(client, token(a, "registro"))
    assert (await settled(client, token(a, "registro"), asiento["id"])).status_code == 200
    for path, method in (
        ("", "GET"),
        ("/token", "GET"),
        ("/datos", "GET"),
        ("/reintentar", "POST"),
    ):
        other = await client.request(
            method, url(asiento["id"], path), headers=bearer(token(b, "registro"))
        )
        assert other.status_code == 404, (path, other.status_code)
        assert other.headers["content-type"].startswith("application/problem+json")
    for missing in (str(uuid.uuid4()), "no-es-un-uuid"):
        response = await client.get(url(missing), headers=bearer(token(a, "registro")))
        assert response.status_code == 404
    no_role = await client.get(url(asiento["id"]), headers=bearer(token(a, "tramitador")))
    assert no_role.status_code == 403
    async with tenant_transaction(platform.db, b) as session:
        assert await sello_tiempo.token_de(session, asiento_id=asiento["id"]) is None

    await eventually(lambda: replies)
    async with tsa_held(platform):
        mine = await register(client, token(b, "registro"))
        await eventually(lambda: row_of(platform, b, mine["id"]))
        pending = await client.get(url(mine["id"]), headers=bearer(token(b, "registro")))
        assert pending.status_code == 202
        assert pending.headers["retry-after"] == "2"
        assert pending.json()["estado"] == "pendiente"
        # A's token sent in A's name for B's request: A's registro cannot see B's
        # request (RLS), so B's stays pending. (In B's name it would be read and
        # refused: see test_a_token_over_other_bytes_is_not_kept.)
        b_request = solicitud_id(mine["id"])
        await deliver(
            platform, "sellos-tiempo-respuestas", reply_in(platform, a, replies[0], b_request)
        )
        row = await row_of(platform, b, mine["id"])
        assert (row.estado, row.token) == ("pendiente", None)
    # B's own token, once the TSA answers.
    done = await settled(client, token(b, "registro"), mine["id"])
    assert done.json()["estado"] == "sellado"
    assert done.json()["token"] != replies[0].data["token"]


async def test_redeliveries_change_nothing(platform, client, new_tenant, token) -> None:
    tenant = await new_tenant()
    registered = await collect_events(platform.transport, f"{tenant}.{REGISTRADO}")
    commands = await collect_events(platform.transport, f"{tenant}.{SOLICITAR}")
    replies = await collect_events(platform.transport, f"{tenant}.{EMITIDO}")
    asiento = await register(client, token(tenant, "registro"))
    await settled(client, token(tenant, "registro"), asiento["id"])
    await eventually(lambda: registered and replies)
    before = await row_of(platform, tenant, asiento["id"])

    # The asiento event again (a republish gets a new id, so the inbox does not catch it).
    await deliver(platform, "sellos-tiempo", registered[0])
    # The sellado's reply again, and another token for the same request.
    await deliver(platform, "sellos-tiempo-respuestas", replies[0])
    await deliver(platform, "sellos-tiempo-respuestas", replies[0])

    after = await row_of(platform, tenant, asiento["id"])
    assert after == before
    assert len(commands) == 1
    assert await audit_actions(platform, tenant) == ["solicitar-sello-tiempo", "sellar-tiempo"]


async def test_a_token_over_other_bytes_is_not_kept(platform, client, new_tenant, token) -> None:
    tenant = await new_tenant()
    replies = await collect_events(platform.transport, f"{tenant}.{EMITIDO}")
    first = await register(client, token(tenant, "registro"))
    await settled(client, token(tenant, "registro"), first["id"])
    await eventually(lambda: replies)
    async with tsa_held(platform):
        second = await register(client, token(tenant, "registro"))
        await eventually(lambda: row_of(platform, tenant, second["id"]))
        # The first asiento's (valid) token as the answer to the second's request.
        forged = reply_in(platform, tenant, replies[0], solicitud_id(second["id"]))
        await deliver(platform, "sellos-tiempo-respuestas", forged)
        row = await row_of(platform, tenant, second["id"])
        assert (row.estado, row.codigo, row.token) == ("fallido", "token-no-valido", None)
        assert "no sella la huella pedida" in row.motivo
    # The sellado's real answer comes late for a request already settled: skipped.
    await eventually(lambda: len(replies) == 2)
    retried = await client.post(
        url(second["id"], "/reintentar"), headers=bearer(token(tenant, "registro"))
    )
    assert retried.status_code == 202
    sealed = await settled(client, token(tenant, "registro"), second["id"])
    assert sealed.json()["estado"] == "sellado"
    assert sealed.json()["intento"] == 2


async def test_the_stamped_bytes_cannot_be_rewritten_by_the_service(settings: Settings) -> None:
    engine = create_async_engine(asyncpg_url(settings.database_url or ""))
    role = settings.database_app_role
    try:
        async with engine.connect() as conn:
            rls = (
                await conn.execute(
                    text(
                        "SELECT relrowsecurity FROM pg_class "
                        "WHERE oid = 'registro.sellos_tiempo'::regclass"
                    )
                )
            ).scalar_one()

            async def column(name: str, privilege: str) -> bool:
                result = await conn.execute(
                    text("SELECT has_column_privilege(:role, 'registro.sellos_tiempo', :c, :p)"),
                    {"role": role, "c": name, "p": privilege},
                )
                return bool(result.scalar_one())

            updatable = {c: await column(c, "UPDATE") for c in ("datos", "huella", "estado")}
            delete = (
                await conn.execute(
                    text("SELECT has_table_privilege(:role, 'registro.sellos_tiempo', 'DELETE')"),
                    {"role": role},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert rls is True
    assert updatable == {"datos": False, "huella": False, "estado": True}
    assert delete is False


async def test_the_sicres_export_carries_the_register_time_stamp(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    jwt = token(tenant, "registro")
    asiento = await register(client, jwt)
    sellado = await settled(client, jwt, asiento["id"])
    assert sellado.json()["estado"] == "sellado"
    exported = await client.get(
        f"/api/v1/registro/asientos/{asiento['id']}/sicres", headers=bearer(jwt)
    )
    assert exported.status_code == 200, exported.text
    sicres.validate(exported.content)
    root = etree.fromstring(exported.content)
    carried = root.findtext("De_Origen_o_Remitente/Timestamp_Entrada")
    assert carried is not None
    assert base64.b64decode(carried) == base64.b64decode(sellado.json()["token"])


async def test_a_reply_to_another_solicitante_is_acked_without_a_transaction(
    platform, client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    replies = await collect_events(platform.transport, f"{tenant}.{EMITIDO}")
    asiento = await register(client, token(tenant, "registro"))
    await settled(client, token(tenant, "registro"), asiento["id"])
    await eventually(lambda: replies)
    inbox = platform.runtimes["registro"].tables.inbox

    async def claimed(event_id: str) -> int:
        async with tenant_transaction(platform.db, tenant) as session:
            found = await session.execute(select(inbox).where(inbox.c.event_id == event_id))
            return len(found.all())

    # The same reply, as the notificaciones' own request would have had it answered.
    ajena = build_envelope(
        EventName.parse(EMITIDO),
        tenant=tenant,
        data={**replies[0].data, "solicitante": "notificaciones"},
        dataschema=platform.contracts.schema_uri(EMITIDO),
    )
    propia = build_envelope(
        EventName.parse(EMITIDO),
        tenant=tenant,
        data={**replies[0].data, "solicitante": "registro"},
        dataschema=platform.contracts.schema_uri(EMITIDO),
    )
    await deliver(platform, "sellos-tiempo-respuestas", ajena)
    await deliver(platform, "sellos-tiempo-respuestas", propia)

    assert await claimed(ajena["id"]) == 0
    assert await claimed(propia["id"]) == 1
