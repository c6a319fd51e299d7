"""Issuing documents on real PostgreSQL and the in-process bus: the repositorio, the csv
service and the sellado as the platform wires them.

Covered: emitir → 201 with the CSV; the new version stamped on every page (text and QR),
sealed and valid; the public download by CSV, byte for byte and across tenants through
the SECURITY DEFINER lookup only; refusals (not a PDF, certified against changes, too big);
the 202 path; idempotent retries; tenant isolation; and the emitir command from other
services, with its referencia carried to the emitido event, once per solicitud.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm
from pyhanko_certvalidator.registry import SimpleCertificateStore
from sqlalchemy import func, select, text

from gateway.app import create_gateway
from services.bootstrap import Platform, build_platform
from services.catalog import SERVICES, all_public_paths
from services.common.bus.envelope import EventName, ReceivedEvent, build_envelope, parse_envelope
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.transport import Delivery, OutgoingMessage
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.csv.models import codigos
from services.repositorio.emision.models import emisiones
from services.repositorio.models import documentos, versiones
from services.repositorio.storage.filesystem import FilesystemBlobStore
from services.sellado.verification import verify_pdf
from tests.support.pades_material import TestPki, minimal_pdf
from tests.support.waiting import eventually
from tests.unit.test_stamping import expected_cells, footer_of, pages_of, qr_cells

pytestmark = pytest.mark.integration

URL = "/api/v1/documentos"
CSV_PATTERN = re.compile(r"^[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){4}$")
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RESERVAR = "csv.codigo.reservar.v1"
EMITIR = "repositorio.documento.emitir.v1"
EMITIDO = "repositorio.documento.emitido.v1"
FALLIDA = "repositorio.emision.fallida.v1"
ALMACENADO = "repositorio.documento.almacenado.v1"


def check_character(payload: str) -> str:
    """ISO 7064 hybrid check character MOD 33,32 over the CSV alphabet (for unknown codes)."""
    modulus = len(ALPHABET)
    product = modulus
    for symbol in payload:
        total = (product + ALPHABET.index(symbol)) % modulus or modulus
        product = (2 * total) % (modulus + 1)
    return ALPHABET[(modulus + 1 - product) % modulus]


def new_code() -> str:
    """A well-formed code nobody issued."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(24))
    symbols = body + check_character(body)
    return "-".join(symbols[i : i + 5] for i in range(0, 25, 5))


async def start_platform(settings: Settings, blobs: Path) -> Platform:
    platform = await build_platform(
        settings, ["csv", "sellado", "repositorio"], transport=InProcessTransport()
    )
    platform.apps["repositorio"].state.blob_store = FilesystemBlobStore(blobs)
    for runtime in platform.runtimes.values():
        await runtime.start()
    return platform


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[Platform]:
    platform = await start_platform(settings, tmp_path / "documentos")
    yield platform
    await platform.close()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=platform.apps["repositorio"])
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as out:
        yield out


async def verificacion(platform: Platform, csv: str) -> httpx.Response:
    """What the csv service's public page says of a code (as JSON)."""
    transport = httpx.ASGITransport(app=platform.apps["csv"])
    async with httpx.AsyncClient(transport=transport, base_url="http://csv") as out:
        return await out.get(f"/api/v1/csv/verificar/{csv}", headers={"Accept": "application/json"})


class Events:
    """Every event of some names the test's tenants see, as they cross the bus."""

    def __init__(self) -> None:
        self.received: list[ReceivedEvent] = []

    async def collect(self, delivery: Delivery) -> None:
        self.received.append(parse_envelope(delivery.body))
        await delivery.ack()

    def of(self, name: str, tenant: str) -> list[ReceivedEvent]:
        return [e for e in self.received if str(e.name) == name and e.tenant == tenant]


@pytest.fixture
async def events(platform: Platform) -> Events:
    seen = Events()
    await platform.transport.subscribe(
        f"pruebas.eventos.{uuid.uuid4().hex}",
        [EventName.parse(n).binding() for n in (EMITIDO, FALLIDA, ALMACENADO, RESERVAR)],
        seen.collect,
    )
    return seen


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metadatos(**overrides: Any) -> dict[str, Any]:
    data = {
        "organo": "L01030149",
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD01",
        **overrides,
    }
    return data


async def upload(
    client: httpx.AsyncClient,
    token: str,
    data: bytes,
    *,
    filename: str = "resolucion.pdf",
    mime: str = "application/pdf",
) -> dict[str, Any]:
    response = await client.post(
        URL,
        data={"metadatos": json.dumps(metadatos())},
        files={"file": (filename, data, mime)},
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    documento: dict[str, Any] = response.json()
    return documento


async def emitir(
    client: httpx.AsyncClient,
    token: str,
    documento_id: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return await client.post(
        f"{URL}/{documento_id}/emitir", headers={**auth(token), **(headers or {})}, **kwargs
    )


async def content(client: httpx.AsyncClient, token: str, documento_id: str, version: int) -> bytes:
    response = await client.get(
        f"{URL}/{documento_id}/versiones/{version}/contenido", headers=auth(token)
    )
    assert response.status_code == 200
    return response.content


async def version_count(platform: Platform, tenant: str, documento_id: str) -> int:
    runtime = platform.runtimes["repositorio"]
    async with tenant_transaction(runtime.db, tenant) as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(versiones)
                .where(versiones.c.documento_id == documento_id)
            )
        )


def dev_root(platform: Platform) -> Any:
    return platform.apps["sellado"].state.sellado.pki.root


async def certified_against_changes(pdf: bytes) -> bytes:
    """``pdf`` certified by its author with DocMDP "no changes": no one may seal it after."""
    pki = TestPki()
    pair = pki.seal_for("46250", "Ajuntament de Prova")

    def der(cert: Any) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    key = pair.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        signing_cert=der(pair.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(key),
        cert_registry=SimpleCertificateStore.from_certs([der(pki.root)]),
    )
    out = BytesIO()
    await signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name="Certificacion", certify=True, docmdp_permissions=MDPPerm.NO_CHANGES
        ),
        signer,
    ).async_sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), output=out)
    return out.getvalue()


# --- issuing over HTTP ---------------------------------------------------------------------


async def test_emitir_issues_a_stamped_sealed_version_served_publicly_byte_for_byte(
    platform: Platform, client: httpx.AsyncClient, events: Events, new_tenant, token, settings
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    original = minimal_pdf(pages=3)
    documento = await upload(client, user, original)
    documento_id = documento["id"]

    response = await emitir(client, user, documento_id)

    assert response.status_code == 201, response.text
    body = response.json()
    csv = body["csv"]
    assert CSV_PATTERN.match(csv)
    assert body["url_verificacion"] == f"{settings.public_base_url}/verificar/{csv}"
    assert body["documento_id"] == documento_id
    issued = body["version"]
    assert issued["version"] == 2
    assert issued["formato"] == "PDF" and issued["mime"] == "application/pdf"
    assert issued["nombre"] == "resolucion.pdf"
    assert response.headers["location"] == f"{URL}/{documento_id}/versiones/2"
    # The same document: its ENI metadata are those of the version issued.
    first = documento["version_actual"]["metadatos"]
    for key in ("identificador", "organo", "origen", "estado_elaboracion", "tipo_documental"):
        assert issued["metadatos"][key] == first[key]

    pdf = await content(client, user, documento_id, 2)
    assert hashlib.sha256(pdf).hexdigest() == issued["sha256"]
    assert len(pdf) == issued["tamano"]
    # Original, then the stamp, then the seal: each an update appended to the one before.
    assert pdf.startswith(original)

    pages = pages_of(pdf)
    assert len(pages) == 3
    for page in pages:
        _, footer = footer_of(page)
        assert b"(C\xf3digo Seguro de Verificaci\xf3n \\(CSV\\): " + csv.encode() + b")" in (
            footer.data
        )
        assert b"(Verificable en " + body["url_verificacion"].encode() + b")" in footer.data
        qr = footer["/Resources"]["/XObject"]["/QR"]
        assert qr_cells(qr) == expected_cells(body["url_verificacion"])

    reports = await verify_pdf(pdf, trust_roots=[dev_root(platform)])
    seals = [r for r in reports if r.kind == "firma"]
    assert len(seals) == 1
    seal = seals[0]
    assert seal.intact and seal.valid and seal.trusted, seal.errors
    assert seal.timestamp_valid is True
    assert seal.signer_ine == tenant
    assert seal.coverage == "documento-completo"

    # Anyone with the code gets exactly those bytes, without logging in.
    public = await client.get(f"{URL}/verificar/{csv}/documento")
    assert public.status_code == 200, public.text
    assert public.content == pdf
    assert public.headers["content-type"] == "application/pdf"
    assert public.headers["etag"] == f'"{issued["sha256"]}"'
    assert public.headers["content-disposition"].startswith("inline;")
    typed = await client.get(f"{URL}/verificar/{csv.lower()}/documento")
    assert typed.content == pdf
    cached = await client.get(
        f"{URL}/verificar/{csv}/documento", headers={"If-None-Match": public.headers["etag"]}
    )
    assert cached.status_code == 304

    # The documento now names the CSV of its current, issued version.
    actual = (await client.get(f"{URL}/{documento_id}", headers=auth(user))).json()
    assert (actual["csv"], actual["url_verificacion"]) == (csv, body["url_verificacion"])
    assert documento["csv"] is None  # as uploaded, before the emisión

    state = await client.get(
        f"{URL}/{documento_id}/emisiones/{body['emision_id']}", headers=auth(user)
    )
    assert state.status_code == 200
    assert state.json()["estado"] == "emitida"
    assert state.json()["csv"] == csv
    assert state.json()["version_origen"] == 1
    assert state.json()["version_emitida"] == 2
    assert f"Ayuntamiento de prueba {tenant}" in state.json()["firmante"]

    emitido = (await eventually(lambda: events.of(EMITIDO, tenant)))[0].data
    assert emitido["documento_id"] == documento_id
    assert emitido["version"] == 2
    assert emitido["csv"] == csv
    assert emitido["sha256"] == issued["sha256"]
    assert emitido["tamano"] == len(pdf)
    assert emitido["identificador"] == first["identificador"]
    assert emitido["tipo_documental"] == "TD01"
    assert emitido["organo"] == "L01030149"
    assert "solicitud_id" not in emitido and "referencia" not in emitido

    # The csv service activated the code on emitido: it now verifies, naming these bytes.
    async def verified() -> dict[str, Any] | None:
        answer = await verificacion(platform, csv)
        return answer.json() if answer.status_code == 200 else None

    details = await eventually(verified)
    assert details["sha256"] == issued["sha256"]
    assert details["tamano"] == len(pdf)
    assert details["url_descarga"].endswith(f"/verificar/{csv}/documento")
    almacenados = await eventually(lambda: len(events.of(ALMACENADO, tenant)) == 2 or None)
    assert almacenados
    assert [e.data["version"] for e in events.of(ALMACENADO, tenant)] == [1, 2]


async def test_an_older_version_is_issued_with_its_own_metadata(
    client: httpx.AsyncClient, new_tenant, token
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    documento = await upload(client, user, minimal_pdf("Primera"))
    second = await client.post(
        f"{URL}/{documento['id']}/versiones",
        data={"metadatos": json.dumps(metadatos(tipo_documental="TD13"))},
        files={"file": ("informe.pdf", minimal_pdf("Segunda"), "application/pdf")},
        headers=auth(user),
    )
    assert second.status_code == 201

    response = await emitir(client, user, documento["id"], json={"version": 1})

    assert response.status_code == 201, response.text
    issued = response.json()["version"]
    assert issued["version"] == 3
    assert issued["nombre"] == "resolucion.pdf"
    assert issued["metadatos"]["tipo_documental"] == "TD01"
    pdf = await content(client, user, documento["id"], 3)
    assert pdf.startswith(await content(client, user, documento["id"], 1))
    # An issued version already carries a CSV: it is not issued again.
    again = await emitir(client, user, documento["id"], json={"version": 3})
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "version"


async def test_only_pdf_versions_are_issued(
    platform: Platform, client: httpx.AsyncClient, new_tenant, token
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    documento = await upload(
        client, user, b"Acta en texto plano\n", filename="acta.txt", mime="text/plain"
    )

    response = await emitir(client, user, documento["id"])

    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["field"] == "version"
    assert "PDF" in problem["detail"] and "TXT" in problem["detail"]
    missing = await emitir(client, user, documento["id"], json={"version": 7})
    assert missing.status_code == 404
    bad = await emitir(client, user, documento["id"], json={"version": 0})
    assert bad.status_code == 422
    runtime = platform.runtimes["repositorio"]
    async with tenant_transaction(runtime.db, tenant) as session:
        assert await session.scalar(select(func.count()).select_from(emisiones)) == 0


async def test_a_sellado_refusal_is_a_422_and_issues_nothing(
    platform: Platform, client: httpx.AsyncClient, events: Events, new_tenant, token
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    documento = await upload(client, user, await certified_against_changes(minimal_pdf()))

    response = await emitir(client, user, documento["id"])

    assert response.status_code == 422, response.text
    problem = response.json()
    assert "sellado rechazó" in problem["detail"]
    assert problem["errors"][0]["field"] == "emision"
    assert problem["errors"][0]["message"].startswith("pdf-no-valido")
    assert await version_count(platform, tenant, documento["id"]) == 1
    runtime = platform.runtimes["repositorio"]
    async with tenant_transaction(runtime.db, tenant) as session:
        emision = (await session.execute(select(emisiones))).one()
    assert emision.estado == "fallida"
    assert emision.codigo == "pdf-no-valido"
    fallida = (await eventually(lambda: events.of(FALLIDA, tenant)))[0].data
    # With the CSV, so that the csv service annuls it.
    assert fallida["csv"] == emision.csv
    assert fallida["documento_id"] == documento["id"]
    assert fallida["codigo"] == "pdf-no-valido"
    assert "solicitud_id" not in fallida
    assert events.of(EMITIDO, tenant) == []
    public = await client.get(f"{URL}/verificar/{emision.csv}/documento")
    assert public.status_code == 404
    # The code was reserved by the csv service, then annulled: it never verifies.
    csv_db = platform.runtimes["csv"].db

    async def annulled() -> bool:
        async with tenant_transaction(csv_db, tenant) as session:
            estado = await session.scalar(
                select(codigos.c.estado).where(codigos.c.csv == emision.csv)
            )
        return estado == "anulado"

    await eventually(annulled)
    assert (await verificacion(platform, emision.csv)).status_code == 404


async def test_a_document_too_big_once_stamped_fails_before_the_sellado(
    settings: Settings, tmp_path: Path, new_tenant, token
) -> None:
    original = minimal_pdf()
    # Room for the document, not for the footer on it.
    tight = settings.model_copy(update={"sellado_max_pdf_bytes": len(original) + 200})
    platform = await start_platform(tight, tmp_path / "documentos")
    try:
        transport = httpx.ASGITransport(app=platform.apps["repositorio"])
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            tenant = await new_tenant()
            user = token(tenant, "documentos")
            documento = await upload(client, user, original)
            response = await emitir(client, user, documento["id"])
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["message"].startswith("demasiado-grande")
            assert await version_count(platform, tenant, documento["id"]) == 1
            bigger = await upload(client, user, minimal_pdf("x" * 400))
            refused = await emitir(client, user, bigger["id"])
            assert refused.status_code == 422
            assert "sellado" in refused.json()["detail"]
    finally:
        await platform.close()


async def test_a_slow_emision_answers_202_then_can_be_followed(
    platform: Platform, client: httpx.AsyncClient, new_tenant, token, settings
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    documento = await upload(client, user, minimal_pdf())
    runtime = platform.runtimes["repositorio"]
    runtime.settings = settings.model_copy(update={"emision_wait_seconds": 0})

    response = await emitir(client, user, documento["id"])

    assert response.status_code == 202, response.text
    assert response.headers["retry-after"] == "1"
    location = response.headers["location"]
    assert location == f"{URL}/{documento['id']}/emisiones/{response.json()['id']}"
    assert response.json()["estado"] in ("pendiente", "sellando")

    async def issued() -> dict[str, Any] | None:
        state = await client.get(location, headers=auth(user))
        body: dict[str, Any] = state.json()
        return body if body["estado"] == "emitida" else None

    final = await eventually(issued)
    assert CSV_PATTERN.match(final["csv"])
    assert final["version_emitida"] == 2


async def test_a_retried_emitir_with_the_same_key_issues_once(
    platform: Platform, client: httpx.AsyncClient, new_tenant, token
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    documento = await upload(client, user, minimal_pdf())
    key = {"Idempotency-Key": f"emitir-{uuid.uuid4()}"}

    first, second = [await emitir(client, user, documento["id"], headers=key) for _ in range(2)]

    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await version_count(platform, tenant, documento["id"]) == 2
    other = await emitir(client, user, documento["id"], json={"version": 1}, headers=key)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_another_tenants_documents_and_emisiones_do_not_exist(
    platform: Platform, client: httpx.AsyncClient, new_tenant, token
) -> None:
    owner, stranger = await new_tenant(), await new_tenant()
    documento = await upload(client, token(owner, "documentos"), minimal_pdf())
    issued = await emitir(client, token(owner, "documentos"), documento["id"])
    assert issued.status_code == 201
    emision_url = f"{URL}/{documento['id']}/emisiones/{issued.json()['emision_id']}"

    assert (await emitir(client, token(stranger, "documentos"), documento["id"])).status_code == 404
    seen = await client.get(emision_url, headers=auth(token(stranger, "documentos")))
    assert seen.status_code == 404
    assert (await emitir(client, token(owner, "registro"), documento["id"])).status_code == 403
    assert (await client.post(f"{URL}/{documento['id']}/emitir")).status_code == 401
    # The tables keep their row-level security: without a tenant the app role sees no
    # emisión, and only the SECURITY DEFINER lookup crosses tenants, saying where.
    runtime = platform.runtimes["repositorio"]
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(emisiones)) == 0
        found = (
            await session.execute(
                text("SELECT * FROM repositorio.documento_emitido(:csv)"),
                {"csv": issued.json()["csv"]},
            )
        ).one()
    assert set(found._mapping) == {"tenant_id", "documento_id", "version", "sha256"}
    assert (found.tenant_id, str(found.documento_id), found.version) == (
        owner,
        documento["id"],
        2,
    )


async def test_public_download_refuses_unknown_and_malformed_codes(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.get(f"{URL}/verificar/{new_code()}/documento")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    for bad in ("ABCDE", "ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ0", "ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ22"):
        malformed = await client.get(f"{URL}/verificar/{bad}/documento")
        assert malformed.status_code == 400, bad
        assert malformed.json()["errors"][0]["field"] == "csv"


# --- the gateway's public path -------------------------------------------------------------


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        """The test's event loop keeps its own signal handling."""


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_the_gateway_serves_the_issued_pdf_at_its_public_path(
    platform: Platform, client: httpx.AsyncClient, settings: Settings, new_tenant, token
) -> None:
    tenant = await new_tenant()
    user = token(tenant, "documentos")
    documento = await upload(client, user, minimal_pdf())
    issued = await emitir(client, user, documento["id"])
    assert issued.status_code == 201
    csv = issued.json()["csv"]
    pdf = await content(client, user, documento["id"], 2)

    async with serve(platform.apps["repositorio"]) as base:
        # As the runner wires it: each route segment of a service to its address.
        urls = {segment: base for segment in SERVICES["repositorio"]().gateway_routes}
        gateway = create_gateway(
            settings=settings,
            verifier=platform.verifier,
            service_urls=urls,
            public_paths=all_public_paths(),
        )
        async with gateway.router.lifespan_context(gateway):
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport, base_url="http://edge") as edge:
                response = await edge.get(f"/verificar/{csv}/documento")
                missing = await edge.get(f"/verificar/{new_code()}/documento")

    assert response.status_code == 200, response.text
    assert response.content == pdf
    assert response.headers["content-type"] == "application/pdf"
    assert missing.status_code == 404


# --- the emitir command --------------------------------------------------------------------


def emitir_command(tenant: str, pdf: bytes, **data: Any) -> dict[str, Any]:
    return build_envelope(
        EventName.parse(EMITIR),
        tenant=tenant,
        data={
            "solicitud_id": str(uuid.uuid4()),
            "solicitante": "registro",
            "nombre_fichero": "justificante-E-2026-000042.pdf",
            "pdf": base64.b64encode(pdf).decode("ascii"),
            "metadatos": {
                "organo": "L01030149",
                "origen": "administracion",
                "estado_elaboracion": "EE01",
                "tipo_documental": "TD09",
            },
            **data,
        },
        dataschema="https://consistorio.es/bus-contracts/repositorio/documento-emitir/v1.json",
    )


async def send(platform: Platform, envelope: dict[str, Any]) -> None:
    await platform.transport.publish(
        OutgoingMessage(
            routing_key=f"{envelope['tenantid']}.{EMITIR}",
            body=json.dumps(envelope).encode(),
            message_id=envelope["id"],
        )
    )


def applied(platform: Platform, tenant: str, envelope: dict[str, Any]) -> Callable[[], Any]:
    """A check that the repositorio's emitir consumer took ``envelope`` (its inbox has it)."""
    runtime = platform.runtimes["repositorio"]

    async def check() -> bool:
        async with tenant_transaction(runtime.db, tenant) as session:
            row = await session.scalar(
                select(func.count())
                .select_from(runtime.tables.inbox)
                .where(runtime.tables.inbox.c.event_id == envelope["id"])
            )
        return bool(row)

    return check


async def test_the_emitir_command_stores_issues_and_answers_with_its_referencia(
    platform: Platform, client: httpx.AsyncClient, events: Events, new_tenant, token
) -> None:
    tenant = await new_tenant()
    original = minimal_pdf("Justificante de registro", pages=2)
    referencia = {"tipo": "asiento", "id": str(uuid.uuid4()), "numero": "E-2026-000042"}
    command = emitir_command(tenant, original, referencia=referencia)

    await send(platform, command)

    emitido = (await eventually(lambda: events.of(EMITIDO, tenant)))[0].data
    assert emitido["solicitud_id"] == command["data"]["solicitud_id"]
    assert emitido["solicitante"] == "registro"
    assert emitido["referencia"] == referencia
    assert emitido["version"] == 2
    assert emitido["nombre_fichero"] == "justificante-E-2026-000042.pdf"
    assert emitido["tipo_documental"] == "TD09"
    user = token(tenant, "documentos")
    pdf = await content(client, user, emitido["documento_id"], 2)
    assert pdf.startswith(await content(client, user, emitido["documento_id"], 1))
    assert await content(client, user, emitido["documento_id"], 1) == original
    assert hashlib.sha256(pdf).hexdigest() == emitido["sha256"]
    public = await client.get(f"{URL}/verificar/{emitido['csv']}/documento")
    assert public.content == pdf

    # The requester sends it again (a new message, the same solicitud): nothing new.
    again = {**command, "id": str(uuid.uuid4())}
    await send(platform, again)
    await eventually(applied(platform, tenant, again))
    runtime = platform.runtimes["repositorio"]
    async with tenant_transaction(runtime.db, tenant) as session:
        assert await session.scalar(select(func.count()).select_from(documentos)) == 1
        assert await session.scalar(select(func.count()).select_from(emisiones)) == 1
    assert len(events.of(EMITIDO, tenant)) == 1


async def test_an_emitir_command_that_cannot_be_carried_out_is_answered_fallida(
    platform: Platform, events: Events, new_tenant
) -> None:
    tenant = await new_tenant()
    not_pdf = emitir_command(tenant, b"esto no es un PDF")
    bad_metadata = emitir_command(
        tenant,
        minimal_pdf(),
        metadatos={
            "organo": "L01030149",
            "origen": "administracion",
            "estado_elaboracion": "EE02",
            "tipo_documental": "TD09",
        },
    )

    await send(platform, not_pdf)
    await send(platform, bad_metadata)

    fallidas = await eventually(
        lambda: len(events.of(FALLIDA, tenant)) == 2 and events.of(FALLIDA, tenant)
    )
    by_solicitud = {e.data["solicitud_id"]: e.data for e in fallidas}
    assert by_solicitud[not_pdf["data"]["solicitud_id"]]["codigo"] == "pdf-no-valido"
    assert by_solicitud[bad_metadata["data"]["solicitud_id"]]["codigo"] == "metadatos-no-validos"
    assert (
        "identificador_documento_origen"
        in by_solicitud[bad_metadata["data"]["solicitud_id"]]["motivo"]
    )
    for fallida in fallidas:
        assert fallida.data["solicitante"] == "registro"
        assert "documento_id" not in fallida.data and "csv" not in fallida.data
    runtime = platform.runtimes["repositorio"]
    async with tenant_transaction(runtime.db, tenant) as session:
        assert await session.scalar(select(func.count()).select_from(documentos)) == 0
    assert events.of(RESERVAR, tenant) == []
