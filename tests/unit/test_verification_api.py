"""The verification route: upload limits, problem answers and the report's shape.

The app is built around the router alone, with a real trust root on
``app.state.sellado``; authentication is replaced by a fixed principal, except in
the test that checks the route asks for one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from fastapi import FastAPI

from services.common.auth import Principal
from services.common.cpu import CpuPool
from services.common.deps import get_principal
from services.common.errors import Unauthorized, install_problem_handlers
from services.sellado import verification_api
from services.sellado.pades import seal_pdf
from tests.support.pades_material import TestPki, minimal_pdf

URL = "/api/v1/sellado/verificaciones"
# The report's public shape: renaming a key breaks clients, so it is spelled out.
REPORT_KEYS = [
    "field_name",
    "intact",
    "valid",
    "trusted",
    "signer",
    "signer_organization",
    "signer_ine",
    "signing_time",
    "timestamp_valid",
    "timestamp_authority",
    "coverage",
    "modification_level",
    "kind",
    "errors",
]


@dataclass
class _Pki:
    root: x509.Certificate


@dataclass
class _Sellado:
    """The part of the sellado's trust services the route reads (see verification_api)."""

    pki: _Pki
    max_verify_bytes: int = verification_api.DEFAULT_MAX_VERIFY_BYTES


def build_app(root: x509.Certificate, **sellado: Any) -> FastAPI:
    """The router alone, trusting ``root``, with a fixed caller; ``sellado`` sets limits."""
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(verification_api.router)
    app.state.sellado = _Sellado(_Pki(root), **sellado)
    app.state.cpu = CpuPool(workers=1, per_tenant=1)
    app.dependency_overrides[get_principal] = lambda: Principal(
        sub="ana", tenant="03014", roles=frozenset({"registro"}), name="Ana"
    )
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    """An HTTP client talking to ``app`` in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture(scope="module")
def pki() -> TestPki:
    """The hierarchy whose root the app trusts."""
    return TestPki()


@pytest.fixture(scope="module")
async def sealed(pki: TestPki) -> bytes:
    """A PDF sealed by Alicante under ``pki``."""
    return await seal_pdf(
        minimal_pdf(),
        keypair=pki.seal_for("03014", "Ayuntamiento de Alicante"),
        timestamper=pki.timestamper(),
    )


@pytest.fixture
async def api(pki: TestPki) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with the default limit."""
    async with client(build_app(pki.root)) as http:
        yield http


def assert_problem(response: httpx.Response, status: int, field: str = "file") -> None:
    """The response is an RFC 9457 problem of ``status`` naming ``field``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["instance"] == URL
    assert [e["field"] for e in body["errors"]] == [field]


async def test_a_sealed_pdf_answers_its_report(api: httpx.AsyncClient, sealed: bytes) -> None:
    response = await api.post(URL, files={"file": ("r.pdf", sealed, "application/pdf")})

    assert response.status_code == 200, response.text
    (firma,) = response.json()["firmas"]
    assert set(firma) == set(REPORT_KEYS)
    assert firma["field_name"] == "SelloOrgano"
    assert (firma["intact"], firma["valid"], firma["trusted"]) == (True, True, True)
    assert firma["timestamp_valid"] is True
    assert firma["signer_ine"] == "03014"
    assert firma["signer_organization"] == "Ayuntamiento de Alicante"
    assert firma["signing_time"].startswith("20")
    assert firma["coverage"] == "documento-completo"
    assert firma["errors"] == []


async def test_trust_comes_from_the_app_state_root(sealed: bytes) -> None:
    async with client(build_app(TestPki("Otra raiz").root)) as http:
        response = await http.post(URL, files={"file": ("r.pdf", sealed, "application/pdf")})

    (firma,) = response.json()["firmas"]
    assert firma["intact"] is True
    assert firma["trusted"] is False


async def test_unsigned_pdf_has_no_firmas(api: httpx.AsyncClient) -> None:
    response = await api.post(URL, files={"file": ("r.pdf", minimal_pdf(), "application/pdf")})
    assert response.status_code == 200
    assert response.json() == {"firmas": []}


@pytest.mark.parametrize(
    "content",
    [b"", b"esto no es un PDF", b"%PDF-1.7\n\x00\x01garbage", minimal_pdf()[:200]],
    ids=["vacio", "texto", "cabecera-y-basura", "truncado"],
)
async def test_garbage_is_422_naming_file(api: httpx.AsyncClient, content: bytes) -> None:
    response = await api.post(URL, files={"file": ("x.pdf", content, "application/pdf")})
    assert_problem(response, 422)


async def test_missing_file_part_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(URL, data={"otro": "campo"})
    assert_problem(response, 422)
    assert "file" in response.json()["detail"]


async def test_a_non_multipart_body_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(URL, json={"file": "JVBERi0xLjc="})
    assert_problem(response, 422)


async def test_broken_multipart_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        URL,
        content=b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nsin cierre',
        headers={"content-type": "multipart/form-data"},
    )
    assert_problem(response, 422)


async def test_over_the_default_limit_is_413(api: httpx.AsyncClient) -> None:
    too_big = b"%PDF-1.7\n" + bytes(verification_api.DEFAULT_MAX_VERIFY_BYTES)
    response = await api.post(URL, files={"file": ("big.pdf", too_big, "application/pdf")})
    assert_problem(response, 413)
    assert str(verification_api.DEFAULT_MAX_VERIFY_BYTES) in response.json()["detail"]


async def test_the_limit_comes_from_the_app_state(pki: TestPki, sealed: bytes) -> None:
    async with client(build_app(pki.root, max_verify_bytes=len(sealed) - 1)) as http:
        refused = await http.post(URL, files={"file": ("r.pdf", sealed, "application/pdf")})
    async with client(build_app(pki.root, max_verify_bytes=len(sealed))) as http:
        accepted = await http.post(URL, files={"file": ("r.pdf", sealed, "application/pdf")})

    assert_problem(refused, 413)
    assert accepted.status_code == 200


async def test_a_streamed_upload_is_cut_off_without_content_length(pki: TestPki) -> None:
    limit = 1024
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n\r\n'
        for _ in range(1000):
            sent.append(1)
            yield b"%" * 1024
        yield b"\r\n--b--\r\n"

    async with client(build_app(pki.root, max_verify_bytes=limit)) as http:
        response = await http.post(
            URL, content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
        )

    assert_problem(response, 413)
    assert "content-length" not in response.request.headers
    assert len(sent) < 1000  # the route stopped reading long before the end


async def test_the_route_requires_a_principal(pki: TestPki, sealed: bytes) -> None:
    class _Refusing:
        async def verify(self, token: str) -> Principal:
            raise Unauthorized()

    app = build_app(pki.root)
    app.dependency_overrides.clear()
    app.state.runtime = type("Runtime", (), {"verifier": _Refusing()})()
    async with client(app) as http:
        response = await http.post(URL, files={"file": ("r.pdf", sealed, "application/pdf")})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
