"""Anexos of asientos without a database: what a client may send, how an anexo is named,
typed and hashed for SICRES, the early refusal of an oversize body, and the client that
reads anexo bytes back from the repositorio."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError

from services.common.errors import (
    Conflict,
    Forbidden,
    PayloadTooLarge,
    ProblemError,
    Unprocessable,
    install_problem_handlers,
)
from services.common.settings import load_settings
from services.common.uow import UnitOfWork
from services.registro.anexos import domain as anexos
from services.registro.anexos.api import LimiteCuerpo
from services.registro.anexos.domain import Limites, TipoDocumentoAnexo, Validez
from services.registro.anexos.repositorio_client import (
    RepositorioClient,
    RepositorioNoDisponible,
    RespuestaInesperada,
    repositorio_de,
)
from services.registro.anexos.schemas import AnexoCreate, AnexoRead
from services.registro.anexos.service import guardar_anexos
from services.registro.domain import TipoAsiento

PDF = b"%PDF-1.4\n%anexo\n%%EOF\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def anexo(**fields: Any) -> AnexoCreate:
    return AnexoCreate.model_validate({"nombre": "solicitud.pdf", "contenido": b64(PDF), **fields})


# --- what a client may send ------------------------------------------------------------------


def test_an_anexo_defaults_to_an_attached_document_of_unknown_validity() -> None:
    created = anexo()
    assert created.tipo_documento is TipoDocumentoAnexo.DOCUMENTO_ADJUNTO
    assert created.validez is None and created.tipo_mime is None
    assert created.firma is None and created.sello_tiempo is None


@pytest.mark.parametrize(
    "nombre", ["../etc/passwd", "C:\\Users\\ana\\dni.pdf", "carpeta/dni.pdf", "..", "a\x00b.pdf"]
)
def test_a_name_with_directories_or_control_characters_is_refused(nombre: str) -> None:
    with pytest.raises(ValidationError) as caught:
        anexo(nombre=nombre)
    assert [e["loc"] for e in caught.value.errors()] == [("nombre",)]


def test_a_name_longer_than_sicres_allows_is_refused() -> None:
    with pytest.raises(ValidationError):
        anexo(nombre="a" * 77 + ".pdf")
    assert anexo(nombre="a" * 76 + ".pdf").nombre == "a" * 76 + ".pdf"


def test_sicres_codes_are_the_only_validity_and_type_values() -> None:
    assert [v.value for v in Validez] == ["01", "02", "03", "04"]
    assert [t.value for t in TipoDocumentoAnexo] == ["01", "02", "03"]
    assert anexo(validez="02", tipo_documento="01").validez is Validez.COPIA_COMPULSADA
    with pytest.raises(ValidationError):
        anexo(validez="05")
    with pytest.raises(ValidationError):
        anexo(tipo_documento="04")


def test_the_eni_state_says_original_only_for_an_original() -> None:
    assert Validez.ORIGINAL.estado_elaboracion == "EE01"
    assert Validez.COPIA_COMPULSADA.estado_elaboracion == "EE03"
    assert Validez.COPIA.estado_elaboracion == "EE99"
    assert Validez.COPIA_ORIGINAL.estado_elaboracion == "EE99"


def test_signature_and_time_stamp_must_be_base64() -> None:
    firmado = anexo(firma=" MIIB\nAAAA ", sello_tiempo="MIIC")
    assert firmado.firma == "MIIBAAAA" and firmado.sello_tiempo == "MIIC"
    for field in ("firma", "sello_tiempo"):
        with pytest.raises(ValidationError) as caught:
            anexo(**{field: "no es base64!"})
        assert caught.value.errors()[0]["loc"] == (field,)
    with pytest.raises(ValidationError):
        anexo(firma="A" * (anexos.MAX_FIRMA_CHARS + 4))


def test_a_mime_type_is_normalised_and_checked() -> None:
    assert anexo(tipo_mime="Application/PDF; charset=binary").tipo_mime == "application/pdf"
    assert anexo(tipo_mime="  ").tipo_mime is None
    with pytest.raises(ValidationError):
        anexo(tipo_mime="pdf")


# --- naming, typing and hashing ----------------------------------------------------------------


def test_identificador_fichero_follows_the_number_and_order() -> None:
    assert anexos.identificador_fichero("E/2026/000001", 1, "dni.PDF") == "E_2026_000001_0001.PDF"
    assert anexos.identificador_fichero("S/2026/000042", 5, "sin-extension") == (
        "S_2026_000042_0005"
    )
    largo = anexos.identificador_fichero("E/2026/000001", 2, "x." + "y" * 40)
    assert largo == "E_2026_000001_0002" and len(largo) <= 50


def test_a_declared_mime_type_decides_then_the_extension_then_the_bytes() -> None:
    assert anexos.resolver_mime("application/pdf", "x.bin", b"nada") == "application/pdf"
    assert anexos.resolver_mime(None, "informe.odt", b"PK\x03\x04") == (
        "application/vnd.oasis.opendocument.text"
    )
    assert anexos.resolver_mime(None, "escaneo", PDF) == "application/pdf"
    assert anexos.resolver_mime("application/octet-stream", "foto", b"\xff\xd8\xff\xe0") == (
        "image/jpeg"
    )
    assert anexos.resolver_mime(None, "firma.xsig", b"<?xml version='1.0'?>") == "application/xml"
    with pytest.raises(ValueError):
        anexos.resolver_mime(None, "programa.exe", b"MZ\x90\x00")
    with pytest.raises(ValueError):
        anexos.resolver_mime("application/x-msdownload", "programa.exe", b"MZ")


def test_a_sicres_hash_is_read_as_sha256_when_it_is_one() -> None:
    digest = hashlib.sha256(PDF).digest()
    assert anexos.sha256_de_hash(b64(digest)) == digest.hex()
    assert anexos.sha256_de_hash(b64(digest.hex().encode())) == digest.hex()
    assert anexos.sha256_de_hash(b64(digest.hex().upper().encode())) == digest.hex()
    # The shared example's hashes: base64 of an MD5 hex digest.
    assert anexos.sha256_de_hash("MWE4YjNjOWZlNWUyMWYyYmY2ZGVjZTkwMmNkY2Y4ZTU=") is None
    assert anexos.sha256_de_hash("no es base64") is None


def read(**fields: Any) -> AnexoRead:
    base: dict[str, Any] = {
        "identificador_fichero": "E_2026_000001_0001.pdf",
        "documento_id": "0195a3c4-2a10-7c3e-9d41-8e2f6a7b9c01",
        "version": 1,
        "nombre": "solicitud.pdf",
        "tipo_mime": "application/pdf",
        "tamano": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "tipo_documento": "02",
    }
    return AnexoRead.model_validate({**base, **fields})


def test_the_exported_hash_is_base64_of_the_raw_digest() -> None:
    exported = anexos.hash_sicres(read())
    assert base64.b64decode(exported) == hashlib.sha256(PDF).digest()
    assert anexos.sha256_de_hash(exported) == hashlib.sha256(PDF).hexdigest()
    md5 = "MWE4YjNjOWZlNWUyMWYyYmY2ZGVjZTkwMmNkY2Y4ZTU="
    received = read(documento_id=None, sha256=None, hash_origen=md5, sin_contenido=True)
    assert anexos.hash_sicres(received) == md5
    with pytest.raises(ValueError):
        anexos.hash_sicres(read(sha256=None))


# --- limits ---------------------------------------------------------------------------------

# Refusals happen before the unit of work is touched: a bare object stands in for it.
NO_UOW = cast(UnitOfWork, object())


async def guardar(lista: list[AnexoCreate], limites: Limites) -> list[AnexoRead]:
    return await guardar_anexos(
        NO_UOW,
        asiento_id="0195a3c4-1f0a-7d2e-8c55-6b3f1e9a7d20",
        numero="E/2026/000001",
        tipo=TipoAsiento.ENTRADA,
        anexos=lista,
        limites=limites,
    )


async def test_an_anexo_over_its_limit_is_413_naming_it() -> None:
    limites = Limites(max_anexo_bytes=1000, max_anexos_bytes=5000)
    with pytest.raises(PayloadTooLarge) as caught:
        await guardar([anexo(), anexo(contenido=b64(b"x" * 1001))], limites)
    assert caught.value.errors == [{"field": "anexos[1].contenido", "message": "máximo 1000 bytes"}]
    # Refused on the encoded length too, before decoding anything.
    with pytest.raises(PayloadTooLarge):
        await guardar([anexo(contenido="A" * 4000)], limites)


async def test_anexos_over_the_total_are_413_naming_the_list() -> None:
    limites = Limites(max_anexo_bytes=1000, max_anexos_bytes=1500)
    with pytest.raises(PayloadTooLarge) as caught:
        await guardar([anexo(contenido=b64(b"x" * 800)), anexo(contenido=b64(b"y" * 800))], limites)
    assert [e["field"] for e in caught.value.errors] == ["anexos"]


async def test_bad_or_empty_content_is_422_naming_each_anexo() -> None:
    with pytest.raises(Unprocessable) as caught:
        await guardar(
            [anexo(), anexo(contenido="no-es-base64!"), anexo(contenido="====")], Limites()
        )
    assert [e["field"] for e in caught.value.errors] == [
        "anexos[1].contenido",
        "anexos[2].contenido",
    ]


async def test_a_format_the_repositorio_refuses_is_422_naming_the_field() -> None:
    with pytest.raises(Unprocessable) as caught:
        await guardar(
            [anexo(nombre="programa.exe", contenido=b64(b"MZ\x90\x00")), anexo(tipo_mime="a/b")],
            Limites(),
        )
    assert [e["field"] for e in caught.value.errors] == ["anexos[0].nombre", "anexos[1].tipo_mime"]


async def test_more_anexos_than_sir_takes_are_422() -> None:
    with pytest.raises(Unprocessable) as caught:
        await guardar([anexo()] * (anexos.MAX_ANEXOS + 1), Limites())
    assert caught.value.errors[0]["field"] == "anexos"


def test_limits_come_from_the_settings() -> None:
    settings = load_settings(registro_max_anexo_bytes=2048, registro_max_anexos_bytes=4096)
    assert Limites.de(settings) == Limites(2048, 4096)
    assert Limites.de(load_settings()) == Limites(10 * 1024 * 1024, 15 * 1024 * 1024)
    with pytest.raises(ValidationError):
        load_settings(registro_max_anexo_bytes=11 * 1024 * 1024)
    assert anexos.max_cuerpo(Limites(3000, 3000)) == 4000 + anexos.MARGEN_CUERPO


# --- the body is refused before it is parsed ----------------------------------------------------


def limited_app(max_bytes: int) -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    install_problem_handlers(app)
    seen: list[int] = []

    @app.post("/api/v1/registro/asientos")
    async def registrar(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"recibidos": len(body)}

    @app.post("/otra")
    async def otra(request: Request) -> dict[str, int]:
        return {"recibidos": len(await request.body())}

    app.add_middleware(
        LimiteCuerpo, method="POST", path="/api/v1/registro/asientos", max_bytes=max_bytes
    )
    return app, seen


async def chunks(n: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"x" * size


async def test_a_body_over_the_limit_is_413_before_the_route_runs() -> None:
    app, seen = limited_app(1000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        declared = await client.post("/api/v1/registro/asientos", content=b"x" * 1001)
        streamed = await client.post("/api/v1/registro/asientos", content=chunks(20, 100))
        fits = await client.post("/api/v1/registro/asientos", content=chunks(10, 100))
        other = await client.post("/otra", content=b"x" * 5000)
    for refused in (declared, streamed):
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "anexos"
    assert fits.status_code == 200 and fits.json() == {"recibidos": 1000}
    assert seen == [1000]
    assert other.json() == {"recibidos": 5000}


# --- reading anexos back from the repositorio ---------------------------------------------------


def repositorio(
    answers: dict[str, httpx.Response], calls: list[httpx.Request]
) -> RepositorioClient:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        documento = request.url.path.split("/")[4]
        return answers[documento]

    return RepositorioClient("http://repositorio/", transport=httpx.MockTransport(handle))


async def test_contents_are_read_as_the_caller_and_checked() -> None:
    calls: list[httpx.Request] = []
    uno, dos = read(), read(documento_id="0195a3c4-2a11-7f02-a6d3-1b4c5d6e7f80", version=2)
    client = repositorio(
        {uno.documento_id or "": httpx.Response(200, content=PDF)}
        | {dos.documento_id or "": httpx.Response(200, content=PDF)},
        calls,
    )
    sin = read(documento_id=None, version=None, sha256=None, sin_contenido=True)
    assert await client.contenidos([uno, sin, dos], "el-token") == [PDF, None, PDF]
    assert [c.url.path for c in calls] == [
        f"/api/v1/documentos/{uno.documento_id}/versiones/1/contenido",
        f"/api/v1/documentos/{dos.documento_id}/versiones/2/contenido",
    ]
    assert {c.headers["authorization"] for c in calls} == {"Bearer el-token"}


@pytest.mark.parametrize(
    ("response", "problem", "status"),
    [
        (httpx.Response(403), Forbidden, 403),
        (httpx.Response(404), Conflict, 409),
        (httpx.Response(200, content=b"otra cosa"), RespuestaInesperada, 502),
        (httpx.Response(500), RespuestaInesperada, 502),
    ],
)
async def test_the_repositorio_refusal_is_a_clear_problem(
    response: httpx.Response, problem: type[ProblemError], status: int
) -> None:
    uno = read()
    client = repositorio({uno.documento_id or "": response}, [])
    with pytest.raises(problem) as caught:
        await client.contenidos([uno], "t")
    assert caught.value.status == status
    assert "solicitud.pdf" in caught.value.detail


async def test_an_unreachable_repositorio_is_503() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = RepositorioClient("http://repositorio", transport=httpx.MockTransport(refuse))
    with pytest.raises(RepositorioNoDisponible) as caught:
        await client.contenido("0195a3c4-2a10-7c3e-9d41-8e2f6a7b9c01", 1, "t")
    assert caught.value.status == 503 and caught.value.headers == {"Retry-After": "5"}


class _Runtime:
    def __init__(self, urls: dict[str, str]) -> None:
        self.settings = load_settings(service_urls=urls, proxy_timeout_seconds=7)


def request_of(app: FastAPI) -> Request:
    return Request({"type": "http", "app": app, "method": "GET", "path": "/", "headers": []})


def test_the_client_is_found_on_the_app_or_by_the_configured_url() -> None:
    app = FastAPI()
    app.state.runtime = _Runtime({"documentos": "http://repositorio:8000/"})
    assert repositorio_de(request_of(app)).base_url == "http://repositorio:8000"
    app.state.service_urls = {"documentos": "http://127.0.0.1:4321"}
    assert repositorio_de(request_of(app)).base_url == "http://127.0.0.1:4321"
    mine = RepositorioClient("http://en-proceso")
    app.state.repositorio_client = mine
    assert repositorio_de(request_of(app)) is mine
    nowhere = FastAPI()
    nowhere.state.runtime = _Runtime({})
    with pytest.raises(RepositorioNoDisponible):
        repositorio_de(request_of(nowhere))
