"""The register of #5 on real PostgreSQL and RabbitMQ, through the gateway only: a citizen
presents an asiento with an anexo through the sede; the anexo becomes a documento of the
repositorio with the same SHA-256; the register date-time gets an RFC 3161 token that
``openssl ts -verify`` accepts against the platform's public root; the SICRES export
carries both and validates against the official XSD."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from lxml import etree

from services.registro.intercambios import sicres
from tests.support import factories
from tests.support.process import RunningPlatform, start_platform
from tests.support.servers import require_tool

pytestmark = pytest.mark.e2e

PLANO = b"%PDF-1.4\n% plano de la obra\n%%EOF\n"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def until_ok(platform: RunningPlatform, what: str, url: str, token: str) -> httpx.Response:
    """GETs ``url`` until it answers 200 (the work behind it is done), or fails with the
    platform's log."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        response = httpx.get(url, headers=bearer(token), timeout=30)
        if response.status_code == 200:
            return response
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in time:\n{platform.log()[-6000:]}")


def test_a_citizen_s_asiento_with_an_anexo_is_stored_stamped_and_exported(
    tmp_path: Path, platform_factory, real_servers_env
) -> None:
    openssl = require_tool("openssl", "openssl")
    platform = start_platform(tmp_path / "var", real_servers_env)
    platform_factory.append(platform)
    base = platform.base_url
    nif = factories.nif()
    ciudadana = platform.token("03014", "ciudadano", nif=nif)
    created = httpx.post(
        f"{base}/api/v1/registro/asientos",
        json=factories.asiento(
            interesados=[factories.interesado(identificador=nif, nombre="Núria")],
            expone="Que quiere cerrar la terraza.",
            solicita="Licencia de obra menor.",
            anexos=[
                {
                    "nombre": "plano.pdf",
                    "contenido": base64.b64encode(PLANO).decode(),
                    "tipo_documento": "02",
                    "validez": "04",
                }
            ],
        ),
        headers=bearer(ciudadana),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    asiento = created.json()
    assert asiento["canal"] == "electronico"
    [anexo] = asiento["anexos"]
    assert anexo["sha256"] == hashlib.sha256(PLANO).hexdigest()

    # The anexo is a documento of the repositorio, byte for byte.
    staff = platform.token("03014", "registro,documentos")
    url = f"{base}/api/v1/documentos/{anexo['documento_id']}/contenido"
    stored = until_ok(platform, "the anexo's storage", url, staff)
    assert stored.content == PLANO

    # The register date-time is time-stamped; openssl checks it with the public root only.
    sello_url = f"{base}/api/v1/registro/asientos/{asiento['id']}/sello-tiempo"
    sello = until_ok(platform, "the register's time-stamp", sello_url, staff).json()
    assert sello["estado"] == "sellado"
    (tmp_path / "token.tst").write_bytes(
        httpx.get(f"{sello_url}/token", headers=bearer(staff), timeout=30).content
    )
    (tmp_path / "datos.json").write_bytes(
        httpx.get(f"{sello_url}/datos", headers=bearer(staff), timeout=30).content
    )
    (tmp_path / "ca.pem").write_bytes(httpx.get(f"{base}/pki/ca.pem", timeout=30).content)
    verified = subprocess.run(
        [
            openssl,
            "ts",
            "-verify",
            "-data",
            tmp_path / "datos.json",
            "-in",
            tmp_path / "token.tst",
            "-token_in",
            "-CAfile",
            tmp_path / "ca.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr

    # The SICRES export carries the anexo's bytes and the register's token.
    exported = httpx.get(
        f"{base}/api/v1/registro/asientos/{asiento['id']}/sicres",
        headers=bearer(staff),
        timeout=30,
    )
    assert exported.status_code == 200, exported.text
    fichero = sicres.parse_fichero(exported.content)  # validates against the XSD
    [exportado] = fichero.anexos
    assert exportado.contenido == PLANO
    root = etree.fromstring(exported.content)
    carried = root.findtext("De_Origen_o_Remitente/Timestamp_Entrada")
    assert carried is not None and base64.b64decode(carried) == base64.b64decode(sello["token"])
    assert fichero.expone == "Que quiere cerrar la terraza."
