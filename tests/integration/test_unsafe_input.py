"""Inputs that used to reach PostgreSQL and come back as 500s are 422 problems naming the
field: control characters in text and parameters, integers past the database's range,
multipart part names that are not Latin-1. Checked on the real services (registro,
repositorio) over the real database, through the kernel's one check."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from services.bootstrap import Platform
from services.common.inputs import INT_MAX, PARAM_PATTERN, TEXT_PATTERN
from services.common.settings import Settings
from services.repositorio.storage.filesystem import FilesystemBlobStore
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, running_platform

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro", "repositorio"]) as platform:
        platform.apps["repositorio"].state.blob_store = FilesystemBlobStore(tmp_path / "docs")
        yield platform


@pytest.fixture
async def registro(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as client:
        yield client


@pytest.fixture
async def repositorio(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["repositorio"]) as client:
        yield client


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return {e["field"] for e in response.json()["errors"]}


async def test_control_characters_in_json_bodies_name_the_field(
    registro: httpx.AsyncClient, new_tenant: Callable[..., object], token: Callable[..., str]
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "admin"))
    url = "/api/v1/registro/asientos"
    body = factories.asiento(resumen="Solicitud\u0000 de licencia")
    assert _fields(await registro.post(url, json=body, headers=headers)) == {"resumen"}

    interesado = {**factories.interesado(), "nombre": "Lu\u0007cía"}
    body = factories.asiento(interesados=[interesado])
    assert _fields(await registro.post(url, json=body, headers=headers)) == {
        "interesados[0].nombre"
    }

    cierre = await registro.post(
        "/api/v1/registro/oficinas/O00000001/cerrar",
        json={"motivo": "Traslado\u0000"},
        headers=headers,
    )
    assert _fields(cierre) == {"motivo"}

    # Lines and tabs are text, not control: the same asiento with them is registered.
    ok = factories.asiento(resumen="Primera línea\n\tsegunda línea")
    created = await registro.post(url, json=ok, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["resumen"] == "Primera línea\n\tsegunda línea"


async def test_control_characters_and_huge_integers_in_parameters(
    registro: httpx.AsyncClient, new_tenant: Callable[..., object], token: Callable[..., str]
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "admin"))
    asientos = "/api/v1/registro/asientos"
    for name in ("q", "interesado"):
        answer = await registro.get(asientos, params={name: "García\u0000"}, headers=headers)
        assert _fields(answer) == {name}
    for name in ("poderdante", "representante"):
        answer = await registro.get(
            "/api/v1/registro/representaciones", params={name: "1\u00002"}, headers=headers
        )
        assert _fields(answer) == {name}
    # Not even a line feed in a parameter.
    answer = await registro.get(asientos, params={"q": "a\nb"}, headers=headers)
    assert _fields(answer) == {"q"}

    huge = await registro.get(asientos, params={"page": "99999999999999999999"}, headers=headers)
    assert _fields(huge) == {"page"}
    edge = await registro.get(asientos, params={"page": str(INT_MAX)}, headers=headers)
    assert edge.status_code == 200, edge.text

    # A date is ISO 8601: pydantic alone would read a bare number as a Unix time.
    for value in ("0", "0.5", "1700000000"):
        numeric = await registro.get(asientos, params={"desde": value}, headers=headers)
        assert _fields(numeric) == {"desde"}, numeric.text
    iso = await registro.get(asientos, params={"desde": "2026-03-01"}, headers=headers)
    assert iso.status_code == 200, iso.text


async def test_repositorio_path_integers_and_multipart_names(
    repositorio: httpx.AsyncClient, new_tenant: Callable[..., object], token: Callable[..., str]
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "documentos"))
    url = f"/api/v1/documentos/{uuid.uuid4()}/versiones/99999999999999999999/contenido"
    assert _fields(await repositorio.get(url, headers=headers)) == {"version"}

    boundary = "frontera-7MA4YWxk"
    meta = json.dumps({"organo": "L0103\u00000149"}).encode()
    for part_name, expected in (("metadatos", None), ("€uro", "€uro"), ("документ", "документ")):
        data = meta if part_name == "metadatos" else PDF
        body = (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{part_name}"; filename="a.pdf"\r\n'
                f"Content-Type: application/json\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        answer = await repositorio.post(
            "/api/v1/documentos",
            content=body,
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith(PROBLEM)
        fields = {e["field"] for e in answer.json()["errors"]}
        assert fields == ({expected} if expected else {"metadatos.organo"})


async def test_openapi_documents_the_rules(registro: httpx.AsyncClient) -> None:
    spec = (await registro.get("/openapi.json")).json()
    listing = spec["paths"]["/api/v1/registro/asientos"]["get"]
    params = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert params["page"]["maximum"] == INT_MAX
    q = params["q"].get("anyOf", [params["q"]])
    assert any(s.get("pattern") == PARAM_PATTERN for s in q)
    resumen = spec["components"]["schemas"]["AsientoCreate"]["properties"]["resumen"]
    assert resumen.get("pattern") == TEXT_PATTERN


async def test_member_names_and_dir3_codes_are_documented_as_refused(
    registro: httpx.AsyncClient,
) -> None:
    # Fuzzing sent both as schema-valid and got the kernel's 422: the documents now say so.
    spec = (await registro.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert schemas["AsientoCreate"]["propertyNames"] == {"pattern": TEXT_PATTERN}
    unidad = re.compile(schemas["AsientoCreate"]["properties"]["unidad_destino"]["pattern"])
    assert unidad.match(" L01030149\n") and not unidad.match("\x0bL01030149")
    cerrar = spec["paths"]["/api/v1/registro/oficinas/{codigo}/cerrar"]["post"]
    [codigo] = [p["schema"] for p in cerrar["parameters"] if p["name"] == "codigo"]
    assert re.match(codigo["pattern"], " O00002741") and not re.match(
        codigo["pattern"], "\tO00002741"
    )
