"""End to end through the gateway only: register an asiento, its expediente appears.

Once with everything embedded (``consistorio up`` with no servers configured:
embedded PostgreSQL and the in-process bus) and once against the real PostgreSQL
and RabbitMQ.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.support import factories
from tests.support.process import RunningPlatform, start_platform

pytestmark = pytest.mark.e2e


def register_and_find_expediente(platform: RunningPlatform) -> dict:
    """The slice, driven over HTTP: POST asiento, then poll the tramitador for its expediente."""
    token = platform.token("03014", "registro,tramitador")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=platform.base_url, headers=headers, timeout=30) as client:
        created = client.post("/api/v1/registro/asientos", json=factories.asiento())
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"]
        asiento = created.json()
        assert asiento["numero"].startswith(f"E/{asiento['anio']}/")
        deadline = time.monotonic() + 30
        items: list[dict] = []
        while time.monotonic() < deadline and not items:
            found = client.get(
                "/api/v1/tramitador/expedientes", params={"asiento_id": asiento["id"]}
            )
            assert found.status_code == 200, found.text
            items = found.json()["items"]
            if not items:
                time.sleep(0.2)
        assert len(items) == 1, f"no expediente for {asiento['numero']}:\n{platform.log()[-4000:]}"
        expediente = items[0]
        assert expediente["estado"] == "iniciado"
        assert expediente["asiento_numero"] == asiento["numero"]
        one = client.get(f"/api/v1/tramitador/expedientes/{expediente['id']}")
        assert one.status_code == 200
        assert one.json()["id"] == expediente["id"]

        unauthenticated = httpx.post(
            platform.base_url + "/api/v1/registro/asientos", json=factories.asiento()
        )
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"].startswith("application/problem+json")
        other_tenant = platform.token("46250", "registro")
        hidden = httpx.get(
            f"{platform.base_url}/api/v1/registro/asientos/{asiento['id']}",
            headers={"Authorization": f"Bearer {other_tenant}"},
        )
        assert hidden.status_code == 404

        spec = client.get("/openapi.json").json()
        assert "/api/v1/registro/asientos" in spec["paths"]
        assert "/api/v1/tramitador/expedientes" in spec["paths"]
        return asiento


def timestamp_through_the_gateway(platform: RunningPlatform, workdir: Path) -> None:
    """RFC 3161 at the public /tsa, verified by openssl against /pki/ca.pem and /tsa/chain.pem."""
    data = workdir / "documento.txt"
    data.write_text("Consistorio")
    query, reply = workdir / "q.tsq", workdir / "r.tsr"
    run = partial(subprocess.run, check=True, capture_output=True, text=True, timeout=60)
    run(["openssl", "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query)])
    answer = httpx.post(
        platform.base_url + "/tsa",
        content=query.read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/timestamp-reply"
    assert answer.headers["x-request-id"]
    reply.write_bytes(answer.content)
    (workdir / "ca.pem").write_bytes(httpx.get(platform.base_url + "/pki/ca.pem").content)
    (workdir / "chain.pem").write_bytes(httpx.get(platform.base_url + "/tsa/chain.pem").content)
    verified = run(
        [
            "openssl",
            "ts",
            "-verify",
            "-in",
            str(reply),
            "-queryfile",
            str(query),
            "-CAfile",
            str(workdir / "ca.pem"),
            "-untrusted",
            str(workdir / "chain.pem"),
        ]
    )
    assert "Verification: OK" in verified.stdout


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data dir outside pytest's private tmp tree.

    As root, the embedded PostgreSQL runs as its own system user, which must be able
    to reach the data dir; pytest keeps its tmp root at 0700 and resets it whenever a
    pytest session starts, so the server's files live in a directory of their own.
    """
    path = Path(tempfile.mkdtemp(prefix="consistorio-e2e-"))
    path.chmod(0o755)
    yield path / "var"
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_platform(tmp_path: Path, embedded_data_dir: Path, platform_factory) -> None:
    data_dir = embedded_data_dir
    platform = start_platform(data_dir, {})
    platform_factory.append(platform)
    asiento = register_and_find_expediente(platform)
    timestamp_through_the_gateway(platform, tmp_path)
    assert platform.stop() == 0, platform.log()[-4000:]
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), (
        "embedded PostgreSQL left running"
    )

    # Data survives a restart of the embedded PostgreSQL.
    again = start_platform(data_dir, {})
    platform_factory.append(again)
    token = again.token("03014", "registro")
    got = httpx.get(
        f"{again.base_url}/api/v1/registro/asientos/{asiento['id']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert got.status_code == 200
    assert got.json()["numero"] == asiento["numero"]
    assert again.stop() == 0


def test_platform_on_postgresql_and_rabbitmq(
    tmp_path: Path, platform_factory, real_servers_env
) -> None:
    platform = start_platform(tmp_path / "var", real_servers_env)
    platform_factory.append(platform)
    assert "RabbitMQ" in platform.log()
    register_and_find_expediente(platform)
    assert platform.stop() == 0, platform.log()[-4000:]
    assert not (tmp_path / "var" / "postgres").exists(), "no embedded PostgreSQL with DATABASE_URL"
