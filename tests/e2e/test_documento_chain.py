"""The whole documentary chain on real PostgreSQL and RabbitMQ, through the gateway only:
register an asiento → its justificante is issued (CSV stamped, sealed, time-stamped,
stored) → the CSV verifies at /verificar → the downloaded PDF is byte for byte the one
issued → its seal is valid for pyhanko and for Debian's pdfsig."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from services.sellado.verification import verify_pdf
from tests.support import factories
from tests.support.process import RunningPlatform, start_platform
from tests.support.servers import require_tool

pytestmark = pytest.mark.e2e


def wait_for_justificante(platform: RunningPlatform, token: str, asiento_id: str) -> httpx.Response:
    """Polls the justificante until it is issued (303) or the time runs out."""
    url = f"{platform.base_url}/api/v1/registro/asientos/{asiento_id}/justificante"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if response.status_code == 303:
            return response
        assert response.status_code == 202, response.text
        assert response.headers["retry-after"]
        time.sleep(0.5)
    raise AssertionError(f"justificante not issued in time:\n{platform.log()[-6000:]}")


def test_register_justificante_verify_download(
    tmp_path: Path, platform_factory, real_servers_env
) -> None:
    pdfsig = require_tool("pdfsig", "poppler-utils")
    platform = start_platform(tmp_path / "var", real_servers_env)
    platform_factory.append(platform)
    token = platform.token("03014", "registro")
    created = httpx.post(
        f"{platform.base_url}/api/v1/registro/asientos",
        json=factories.asiento(
            interesados=[factories.interesado(nombre="Núria", apellido1="Peñalver")]
        ),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    asiento = created.json()

    issued = wait_for_justificante(platform, token, asiento["id"])
    csv = issued.json()["csv"]
    assert issued.headers["location"] == f"/verificar/{csv}/documento"

    # Anyone can verify it: no token from here on.
    page = httpx.get(f"{platform.base_url}/verificar/{csv}", timeout=30)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert csv in page.text
    details = httpx.get(
        f"{platform.base_url}/verificar/{csv}", headers={"Accept": "application/json"}, timeout=30
    ).json()
    document = httpx.get(f"{platform.base_url}/verificar/{csv}/documento", timeout=30)
    assert document.status_code == 200
    assert document.headers["content-type"] == "application/pdf"
    pdf = document.content
    assert hashlib.sha256(pdf).hexdigest() == details["sha256"]
    assert details["tamano"] == len(pdf)

    root = x509.load_pem_x509_certificate(httpx.get(f"{platform.base_url}/pki/ca.pem").content)
    reports = asyncio.run(verify_pdf(pdf, trust_roots=[root]))
    seals = [r for r in reports if r.kind == "firma"]
    assert len(seals) == 1
    seal = seals[0]
    assert seal.intact and seal.valid and seal.trusted, seal.errors
    assert seal.timestamp_valid is True
    assert seal.signer_ine == "03014"

    path = tmp_path / "justificante.pdf"
    path.write_bytes(pdf)
    shown = subprocess.run(
        [pdfsig, "-nocert", str(path)], capture_output=True, text=True, timeout=60
    )
    assert "Signature is Valid." in shown.stdout, shown.stdout + shown.stderr
    assert "Total document signed" in shown.stdout

    mistyped = csv[:-1] + ("2" if csv[-1] != "2" else "3")
    assert httpx.get(f"{platform.base_url}/verificar/{mistyped}", timeout=30).status_code == 400
    assert platform.stop() == 0, platform.log()[-4000:]
