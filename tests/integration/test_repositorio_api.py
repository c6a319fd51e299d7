"""The repositorio on real PostgreSQL through its app: upload and download, ENI metadata,
versions, caching and ranges, limits, dedupe, tenant isolation, audit and outbox; and,
below HTTP (the ASGI test transport buffers bodies), that uploads really stream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.bootstrap import Platform, build_platform
from services.common.bus.inprocess import InProcessTransport
from services.common.contracts import ContractRegistry
from services.common.db import tenant_transaction
from services.common.errors import PayloadTooLarge, ProblemError
from services.common.settings import Settings
from services.repositorio import service
from services.repositorio.models import documentos
from services.repositorio.storage import BlobCorrupted, BlobStore, ByteRange, StoredBlob
from services.repositorio.storage.filesystem import FilesystemBlobStore
from services.repositorio.upload import receive_upload

pytestmark = pytest.mark.integration

LIMIT = 256 * 1024
URL = "/api/v1/documentos"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[Platform]:
    """The repositorio alone, with a small size limit and its own blob directory."""
    platform = await build_platform(
        settings.model_copy(update={"repositorio_max_bytes": LIMIT}),
        ["repositorio"],
        transport=InProcessTransport(),
    )
    platform.apps["repositorio"].state.blob_store = FilesystemBlobStore(tmp_path / "documentos")
    yield platform
    await platform.close()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    app = platform.apps["repositorio"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as out:
        yield out


@pytest.fixture
def store(platform: Platform) -> FilesystemBlobStore:
    blob_store = platform.apps["repositorio"].state.blob_store
    assert isinstance(blob_store, FilesystemBlobStore)
    return blob_store


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metadatos(**overrides: Any) -> dict[str, Any]:
    """Valid ENI metadata of a resolución, original, made by the administration."""
    data: dict[str, Any] = {
        "organo": "L01030149",
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD01",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def multipart(
    parts: list[tuple[str, str | None, str | None, bytes]], boundary: str = "frontera-7MA4YWxk"
) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body from (name, filename, content type, data), in that order."""
    out = bytearray()
    for name, filename, content_type, data in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload_body(
    meta: dict[str, Any] | None = None,
    data: bytes = PDF,
    filename: str = "resolucion.pdf",
    mime: str | None = "application/pdf",
) -> tuple[bytes, dict[str, str]]:
    parts: list[tuple[str, str | None, str | None, bytes]] = []
    if meta is not None:
        parts.append(("metadatos", None, "application/json", json.dumps(meta).encode()))
    parts.append(("file", filename, mime, data))
    return multipart(parts)


async def upload(
    client: httpx.AsyncClient,
    token: str,
    meta: dict[str, Any] | None = None,
    data: bytes = PDF,
    *,
    url: str = URL,
    filename: str = "resolucion.pdf",
    mime: str | None = "application/pdf",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body, content_headers = upload_body(
        metadatos() if meta is None and url == URL else meta, data, filename, mime
    )
    return await client.post(
        url, content=body, headers={**auth(token), **content_headers, **(headers or {})}
    )


def blob_files(store: FilesystemBlobStore, tenant: str) -> list[Path]:
    root = store.root / tenant
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- upload and download ---------------------------------------------------------------


async def test_upload_answers_the_documento_and_download_gives_the_same_bytes(
    client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    created = await upload(client, t)
    assert created.status_code == 201, created.text
    doc = created.json()
    year = datetime.now(UTC).year
    assert re.fullmatch(rf"ES_L01030149_({year}|{year - 1})_[A-Z0-9]{{30}}", doc["identificador"])
    assert created.headers["location"] == f"{URL}/{doc['id']}"
    assert doc["versiones"] == 1
    actual = doc["version_actual"]
    assert (actual["version"], actual["nombre"], actual["mime"], actual["formato"]) == (
        1,
        "resolucion.pdf",
        "application/pdf",
        "PDF",
    )
    assert (actual["sha256"], actual["tamano"]) == (hashlib.sha256(PDF).hexdigest(), len(PDF))
    eni = actual["metadatos"]
    assert eni["identificador"] == doc["identificador"]
    assert eni["version_nti"] == "http://administracionelectronica.gob.es/ENI/XSD/v1.0/documento-e"
    assert (eni["estado_elaboracion"], eni["tipo_documental"], eni["formato"]) == (
        "EE01",
        "TD01",
        "PDF",
    )
    assert eni["identificador_documento_origen"] is None
    got = await client.get(f"{URL}/{doc['id']}", headers=auth(t))
    assert got.status_code == 200
    assert got.json() == doc
    content = await client.get(f"{URL}/{doc['id']}/contenido", headers=auth(t))
    assert content.status_code == 200
    assert content.content == PDF
    assert content.headers["content-type"] == "application/pdf"
    assert content.headers["content-length"] == str(len(PDF))
    assert content.headers["content-disposition"] == 'attachment; filename="resolucion.pdf"'
    assert content.headers["accept-ranges"] == "bytes"
    assert content.headers["cache-control"] == "private, no-cache"


async def test_declared_capture_date_sets_the_identifier_year(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    meta = metadatos(fecha_captura="2019-12-31T23:30:00Z", tipo_documental="TD14")
    created = await upload(client, token(tenant, "documentos"), meta)
    assert created.status_code == 201, created.text
    # 23:30 UTC on New Year's Eve is already 2020 in Madrid, the entity's legal time.
    assert created.json()["identificador"].startswith("ES_L01030149_2020_")
    eni = created.json()["version_actual"]["metadatos"]
    assert datetime.fromisoformat(eni["fecha_captura"]) == datetime(
        2019, 12, 31, 23, 30, tzinfo=UTC
    )


async def test_a_copy_records_the_document_it_copies(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    original = (await upload(client, t)).json()
    copia = await upload(
        client,
        t,
        metadatos(
            estado_elaboracion="EE02",
            identificador_documento_origen=original["identificador"],
            origen="ciudadano",
        ),
        data=b"<?xml version='1.0'?><copia/>",
        filename="copia.xml",
        mime="text/xml",
    )
    assert copia.status_code == 201, copia.text
    eni = copia.json()["version_actual"]["metadatos"]
    assert eni["identificador_documento_origen"] == original["identificador"]
    assert eni["formato"] == "XML"


async def test_unicode_file_names_download_with_an_rfc_6266_disposition(
    client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    created = await upload(
        client, t, data=b"texto", filename="C:\\Users\\ana\\Resolución nº 7.txt", mime=None
    )
    assert created.status_code == 201, created.text
    actual = created.json()["version_actual"]
    assert (actual["nombre"], actual["mime"], actual["formato"]) == (
        "Resolución nº 7.txt",
        "text/plain",
        "TXT",
    )
    content = await client.get(f"{URL}/{created.json()['id']}/contenido", headers=auth(t))
    assert content.headers["content-type"] == "text/plain"
    assert content.headers["content-disposition"] == (
        'attachment; filename="Resolucion no 7.txt"; '
        "filename*=UTF-8''Resoluci%C3%B3n%20n%C2%BA%207.txt"
    )


# --- caching and ranges ------------------------------------------------------------------


async def test_etag_is_the_sha256_and_if_none_match_answers_304(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    url = f"{URL}/{doc['id']}/contenido"
    etag = f'"{hashlib.sha256(PDF).hexdigest()}"'
    first = await client.get(url, headers=auth(t))
    assert first.headers["etag"] == etag
    for header in (etag, f"W/{etag}", f'"otro", {etag}', "*"):
        again = await client.get(url, headers={**auth(t), "If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
    changed = await client.get(url, headers={**auth(t), "If-None-Match": '"otro"'})
    assert changed.status_code == 200
    assert changed.content == PDF


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, len(PDF) - 1),
        ("bytes=-5", len(PDF) - 5, len(PDF) - 1),
        ("bytes=10-999999", 10, len(PDF) - 1),
        ("bytes=-999999", 0, len(PDF) - 1),
    ],
)
async def test_a_single_range_answers_206(
    client, new_tenant, token, header: str, first: int, last: int
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    part = await client.get(f"{URL}/{doc['id']}/contenido", headers={**auth(t), "Range": header})
    assert part.status_code == 206
    assert part.content == PDF[first : last + 1]
    assert part.headers["content-range"] == f"bytes {first}-{last}/{len(PDF)}"
    assert part.headers["content-length"] == str(last - first + 1)
    assert part.headers["etag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'


async def test_unsatisfiable_range_is_416_and_unsupported_ranges_get_everything(
    client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    url = f"{URL}/{doc['id']}/contenido"
    for header in (f"bytes={len(PDF)}-", "bytes=-0"):
        refused = await client.get(url, headers={**auth(t), "Range": header})
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{len(PDF)}"
        assert refused.headers["content-type"].startswith("application/problem+json")
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=9-3"):
        whole = await client.get(url, headers={**auth(t), "Range": header})
        assert whole.status_code == 200, header
        assert whole.content == PDF
    stale = await client.get(url, headers={**auth(t), "Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200
    assert stale.content == PDF


# --- limits and validation ------------------------------------------------------------------


async def test_a_file_over_the_limit_is_413_naming_file_and_stores_nothing(
    client, platform, store, new_tenant, token
) -> None:
    tenant = await new_tenant()
    body, headers = upload_body(metadatos(), data=os.urandom(LIMIT + 1))
    refused = await client.post(
        URL, content=body, headers={**auth(token(tenant, "documentos")), **headers}
    )
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == ["file"]
    assert blob_files(store, tenant) == []
    runtime = platform.runtimes["repositorio"]
    async with tenant_transaction(runtime.db, tenant) as session:
        assert (await session.execute(select(documentos))).all() == []
    # Exactly the limit is accepted.
    fits = await upload(client, token(tenant, "documentos"), data=os.urandom(LIMIT))
    assert fits.status_code == 201, fits.text


async def test_a_body_declared_far_over_the_limit_is_refused_before_reading(
    client, new_tenant, token
) -> None:
    tenant = await new_tenant()
    body, headers = upload_body(metadatos())
    refused = await client.post(
        URL,
        content=body,
        headers={
            **auth(token(tenant, "documentos")),
            **headers,
            "Content-Length": str(64 * 1024 * 1024),
        },
    )
    assert refused.status_code == 413
    assert refused.json()["errors"][0]["field"] == "file"


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        (metadatos(organo="no-es-dir3"), "metadatos.organo"),
        (metadatos(origen="empresa"), "metadatos.origen"),
        (metadatos(estado_elaboracion="EE05"), "metadatos.estado_elaboracion"),
        (metadatos(tipo_documental="TD21"), "metadatos.tipo_documental"),
        (metadatos(fecha_captura="2026-03-02T10:00:00"), "metadatos.fecha_captura"),
        (metadatos(fecha_captura="ayer"), "metadatos.fecha_captura"),
        (metadatos(estado_elaboracion="EE04"), "metadatos.identificador_documento_origen"),
        (
            metadatos(identificador_documento_origen="ES_X"),
            "metadatos.identificador_documento_origen",
        ),
        (metadatos(identificador="ES_L01030149_2026_X"), "metadatos.identificador"),
        (metadatos(organo=None), "metadatos.organo"),
    ],
)
async def test_each_bad_metadatos_field_is_a_422_naming_it(
    client, store, new_tenant, token, meta: dict[str, Any], field: str
) -> None:
    tenant = await new_tenant()
    refused = await upload(client, token(tenant, "documentos"), meta)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert blob_files(store, tenant) == []


async def test_a_capture_date_in_the_future_is_refused(client, store, new_tenant, token) -> None:
    tenant = await new_tenant()
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    refused = await upload(client, token(tenant, "documentos"), metadatos(fecha_captura=future))
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["metadatos.fecha_captura"]
    assert blob_files(store, tenant) == []


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        ([("metadatos", None, None, b"{no es json")], "metadatos"),
        ([("file", "a.pdf", "application/pdf", PDF)], "metadatos"),
        (
            [
                ("file", "a.pdf", "application/pdf", PDF),
                ("metadatos", None, None, json.dumps(metadatos()).encode()),
            ],
            "metadatos",
        ),
        ([("metadatos", None, None, json.dumps(metadatos()).encode())], "file"),
        (
            [
                ("metadatos", None, None, json.dumps(metadatos()).encode()),
                ("file", "a.exe", "application/x-msdownload", b"MZ"),
            ],
            "file",
        ),
        (
            [
                ("metadatos", None, None, json.dumps(metadatos()).encode()),
                ("file", "sin-extension", None, b"datos"),
            ],
            "file",
        ),
        (
            [
                ("metadatos", None, None, json.dumps(metadatos()).encode()),
                ("file", "vacio.pdf", "application/pdf", b""),
            ],
            "file",
        ),
        (
            [
                ("metadatos", None, None, json.dumps(metadatos()).encode()),
                ("firma", None, None, b"x"),
                ("file", "a.pdf", "application/pdf", PDF),
            ],
            "firma",
        ),
        (
            [
                ("metadatos", None, None, json.dumps(metadatos()).encode()),
                ("file", "a.pdf", "application/pdf", PDF),
                ("firma", None, None, b"x"),
            ],
            "firma",
        ),
    ],
    ids=[
        "bad-json",
        "no-metadatos",
        "metadatos-after-file",
        "no-file",
        "unknown-format",
        "no-type-no-extension",
        "empty-file",
        "unknown-part",
        "part-after-file",
    ],
)
async def test_malformed_uploads_are_422_naming_the_part_and_store_nothing(
    client, store, new_tenant, token, parts, field: str
) -> None:
    tenant = await new_tenant()
    body, headers = multipart(parts)
    refused = await client.post(
        URL, content=body, headers={**auth(token(tenant, "documentos")), **headers}
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert blob_files(store, tenant) == []


async def test_not_multipart_is_415(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    refused = await client.post(URL, json=metadatos(), headers=auth(token(tenant, "documentos")))
    assert refused.status_code == 415
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_auth_401_and_403(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    body, headers = upload_body(metadatos())
    assert (await client.post(URL, content=body, headers=headers)).status_code == 401
    no_role = await client.post(
        URL, content=body, headers={**auth(token(tenant, "registro")), **headers}
    )
    assert no_role.status_code == 403


# --- versions ----------------------------------------------------------------------------------


async def test_a_new_version_never_overwrites_the_old_one(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    segunda = PDF.replace(b"%%EOF", b"%%EOF v2")
    added = await upload(client, t, None, segunda, url=f"{URL}/{doc['id']}/versiones")
    assert added.status_code == 201, added.text
    assert added.headers["location"] == f"{URL}/{doc['id']}/versiones/2"
    now = added.json()
    assert (now["id"], now["identificador"], now["versiones"]) == (
        doc["id"],
        doc["identificador"],
        2,
    )
    assert now["version_actual"]["version"] == 2
    assert now["version_actual"]["sha256"] == hashlib.sha256(segunda).hexdigest()
    # Without new metadatos the version keeps the ENI metadata of the one before.
    before, after = doc["version_actual"]["metadatos"], now["version_actual"]["metadatos"]
    assert {k: v for k, v in after.items() if k != "fecha_captura"} == {
        k: v for k, v in before.items() if k != "fecha_captura"
    }
    history = await client.get(f"{URL}/{doc['id']}/versiones", headers=auth(t))
    assert [v["version"] for v in history.json()["items"]] == [1, 2]
    assert history.json()["items"][0] == doc["version_actual"]
    v1 = await client.get(f"{URL}/{doc['id']}/versiones/1/contenido", headers=auth(t))
    v2 = await client.get(f"{URL}/{doc['id']}/versiones/2/contenido", headers=auth(t))
    current = await client.get(f"{URL}/{doc['id']}/contenido", headers=auth(t))
    assert (v1.content, v2.content, current.content) == (PDF, segunda, segunda)
    one = await client.get(f"{URL}/{doc['id']}/versiones/1", headers=auth(t))
    assert one.json() == doc["version_actual"]
    missing = await client.get(f"{URL}/{doc['id']}/versiones/3/contenido", headers=auth(t))
    assert missing.status_code == 404


async def test_a_version_may_bring_new_metadatos_but_not_a_new_organo(
    client, store, new_tenant, token
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    url = f"{URL}/{doc['id']}/versiones"
    moved = await upload(client, t, metadatos(organo="L01030150"), PDF + b"otro", url=url)
    assert moved.status_code == 422
    assert [e["field"] for e in moved.json()["errors"]] == ["metadatos.organo"]
    assert len(blob_files(store, tenant)) == 1  # the refused version's bytes were not kept
    retyped = await upload(client, t, metadatos(tipo_documental="TD13"), url=url)
    assert retyped.status_code == 201, retyped.text
    assert retyped.json()["version_actual"]["metadatos"]["tipo_documental"] == "TD13"


async def test_versions_added_at_once_get_consecutive_numbers(client, new_tenant, token) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    url = f"{URL}/{doc['id']}/versiones"
    added = await asyncio.gather(
        *(upload(client, t, None, PDF + bytes([i]), url=url) for i in range(6))
    )
    assert [r.status_code for r in added] == [201] * 6
    assert sorted(r.json()["version_actual"]["version"] for r in added) == [2, 3, 4, 5, 6, 7]


# --- dedupe, isolation, idempotency ---------------------------------------------------------------


async def test_identical_content_is_stored_once(client, store, new_tenant, token) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    one = (await upload(client, t)).json()
    two = (await upload(client, t, metadatos(tipo_documental="TD06"))).json()
    assert one["id"] != two["id"]
    assert one["version_actual"]["sha256"] == two["version_actual"]["sha256"]
    files = blob_files(store, tenant)
    assert [p.name for p in files] == [one["version_actual"]["sha256"]]


async def test_another_tenants_documento_is_404_everywhere(client, new_tenant, token) -> None:
    a, b = await new_tenant(), await new_tenant()
    doc = (await upload(client, token(a, "documentos"))).json()
    theirs = auth(token(b, "documentos"))
    for path in (
        f"{URL}/{doc['id']}",
        f"{URL}/{doc['id']}/versiones",
        f"{URL}/{doc['id']}/versiones/1",
        f"{URL}/{doc['id']}/contenido",
        f"{URL}/{doc['id']}/versiones/1/contenido",
        f"{URL}/no-es-un-uuid",
    ):
        response = await client.get(path, headers=theirs)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
    version = await upload(client, token(b, "documentos"), None, url=f"{URL}/{doc['id']}/versiones")
    assert version.status_code == 404


async def test_idempotency_key_replays_the_first_answer(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    key = {"Idempotency-Key": "subida-1"}
    first = await upload(client, t, headers=key)
    second = await upload(client, t, headers=key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = await upload(client, t, data=PDF + b"otro", headers=key)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    runtime = platform.runtimes["repositorio"]
    async with tenant_transaction(runtime.db, tenant) as session:
        assert len((await session.execute(select(documentos))).all()) == 1


# --- audit and outbox ----------------------------------------------------------------------------


async def test_storing_and_versioning_write_audit_records(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos", sub="pepe")
    doc = (await upload(client, t, headers={"X-Request-ID": "req-7"})).json()
    await upload(client, t, None, PDF + b"v2", url=f"{URL}/{doc['id']}/versiones")
    runtime = platform.runtimes["repositorio"]
    audit = runtime.tables.audit_log
    async with tenant_transaction(runtime.db, tenant) as session:
        rows = (await session.execute(select(audit).order_by(audit.c.id))).all()
    assert [(r.actor, r.action, r.entity, r.entity_id) for r in rows] == [
        ("pepe", "almacenar", "documento", doc["id"]),
        ("pepe", "nueva-version", "documento", doc["id"]),
    ]
    assert rows[0].new_values["identificador"] == doc["identificador"]
    assert rows[0].request_id == "req-7"
    assert rows[1].old_values == {"version": 1, "sha256": doc["version_actual"]["sha256"]}
    assert rows[1].new_values["version"] == 2


async def test_every_stored_version_puts_its_event_in_the_outbox(
    client, platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    await upload(client, t, None, PDF + b"v2", url=f"{URL}/{doc['id']}/versiones")
    runtime = platform.runtimes["repositorio"]
    outbox = runtime.tables.outbox
    async with runtime.db.sessions() as session:
        rows = (
            await session.execute(
                select(outbox).where(outbox.c.tenant_id == tenant).order_by(outbox.c.id)
            )
        ).all()
    assert [r.routing_key for r in rows] == [f"{tenant}.{service.DOCUMENTO_ALMACENADO}"] * 2
    registry = ContractRegistry.load()
    for row in rows:
        registry.validate_envelope(row.envelope)
    first = rows[0].envelope
    assert first["type"] == "es.consistorio.repositorio.documento.almacenado.v1"
    assert first["subject"] == doc["id"]
    assert first["data"] == {
        "documento_id": doc["id"],
        "version": 1,
        "identificador": doc["identificador"],
        "sha256": doc["version_actual"]["sha256"],
        "tamano": len(PDF),
        "mime": "application/pdf",
        "nombre": "resolucion.pdf",
        "metadatos": doc["version_actual"]["metadatos"],
    }
    assert rows[1].envelope["data"]["version"] == 2


# --- integrity -----------------------------------------------------------------------------------


async def test_a_tampered_blob_is_never_served_whole(client, store, new_tenant, token) -> None:
    tenant = await new_tenant()
    t = token(tenant, "documentos")
    doc = (await upload(client, t)).json()
    path = store.path_of(tenant, doc["version_actual"]["sha256"])
    os.chmod(path, 0o644)
    path.write_bytes(PDF.replace(b"%PDF-1.7", b"%PDF-1.6"))
    with pytest.raises(BlobCorrupted):
        await client.get(f"{URL}/{doc['id']}/contenido", headers=auth(t))


# --- streaming, below HTTP ------------------------------------------------------------------------


class _CountingSink(BlobStore):
    """A store that reads what it is given and keeps only its size and hash."""

    def __init__(self) -> None:
        self.largest_chunk = 0

    async def put(self, tenant: str, chunks) -> StoredBlob:
        digest, size = hashlib.sha256(), 0
        async for chunk in chunks:
            self.largest_chunk = max(self.largest_chunk, len(chunk))
            digest.update(chunk)
            size += len(chunk)
        return StoredBlob(digest.hexdigest(), size)

    async def get(self, tenant: str, sha256: str, *, byte_range: ByteRange | None = None):
        raise AssertionError("this test never reads a blob back")

    async def exists(self, tenant: str, sha256: str) -> bool:
        return False


def _streamed_body(file_size: int, pulled: list[int]) -> tuple[AsyncIterator[bytes], str]:
    """A multipart body of ``file_size`` bytes made on the fly; ``pulled`` counts what was read."""
    boundary = "b0undary-stream"
    head, _ = multipart([("metadatos", None, None, json.dumps(metadatos()).encode())], boundary)
    head = head.removesuffix(f"--{boundary}--\r\n".encode())
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="g.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    block = os.urandom(64 * 1024)

    async def body() -> AsyncIterator[bytes]:
        pulled.append(len(head))
        yield head
        sent = 0
        while sent < file_size:
            piece = block[: file_size - sent]
            sent += len(piece)
            pulled.append(len(piece))
            yield piece
        pulled.append(len(tail))
        yield tail

    return body(), f"multipart/form-data; boundary={boundary}"


async def test_a_64_mib_upload_over_the_limit_is_refused_without_growing_memory() -> None:
    pulled: list[int] = []
    body, content_type = _streamed_body(64 * 1024 * 1024, pulled)
    limit = 50 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge) as refused:
            await receive_upload(
                content_type=content_type,
                content_length=None,  # chunked: only the stream itself can tell
                body=body,
                store=_CountingSink(),
                tenant="03014",
                max_bytes=limit,
                metadatos_required=True,
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.errors == [{"field": "file", "message": f"máximo {limit} bytes"}]
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while refusing 64 MiB"
    # Reading stopped right after the limit: the remaining 14 MiB were never pulled.
    assert limit < sum(pulled) < limit + 256 * 1024


async def test_an_accepted_upload_reaches_the_store_in_small_chunks(tmp_path: Path) -> None:
    pulled: list[int] = []
    size = 20 * 1024 * 1024
    body, content_type = _streamed_body(size, pulled)
    sink = _CountingSink()
    tracemalloc.start()
    try:
        subida = await receive_upload(
            content_type=content_type,
            content_length=None,
            body=body,
            store=sink,
            tenant="03014",
            max_bytes=50 * 1024 * 1024,
            metadatos_required=True,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert subida.contenido.tamano == size
    assert subida.metadatos is not None and subida.metadatos.organo == "L01030149"
    assert sink.largest_chunk <= 64 * 1024
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a 20 MiB upload"


async def test_one_huge_body_chunk_is_parsed_piece_by_piece() -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    body_bytes, headers = upload_body(metadatos(), data)

    async def one_chunk() -> AsyncIterator[bytes]:
        yield body_bytes

    sink = _CountingSink()
    subida = await receive_upload(
        content_type=headers["Content-Type"],
        content_length=str(len(body_bytes)),
        body=one_chunk(),
        store=sink,
        tenant="03014",
        max_bytes=50 * 1024 * 1024,
        metadatos_required=True,
    )
    assert subida.contenido.sha256 == hashlib.sha256(data).hexdigest()
    assert sink.largest_chunk <= 64 * 1024


async def test_a_truncated_body_is_refused() -> None:
    body_bytes, headers = upload_body(metadatos())

    async def cut() -> AsyncIterator[bytes]:
        yield body_bytes[:-20]

    with pytest.raises(ProblemError, match="termina antes"):
        await receive_upload(
            content_type=headers["Content-Type"],
            content_length=None,
            body=cut(),
            store=_CountingSink(),
            tenant="03014",
            max_bytes=LIMIT,
            metadatos_required=True,
        )
