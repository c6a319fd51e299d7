"""A resolution notified and downloaded through the gateway only, on the real PostgreSQL
and RabbitMQ with every service of ``consistorio up``: the tramitador resolves, the
repositorio issues the resolution with its CSV and seal, notificaciones checks it with
the repositorio over the bus and puts it at disposal; the citizen opens it and downloads
it by its CSV; another citizen, or the same NIF in another council, finds nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import factories
from tests.support.process import RunningPlatform, start_platform

pytestmark = pytest.mark.e2e

CIF = "B12345674"
# The walk of the generic procedure to its resolution, with what each action needs.
PLAN: list[tuple[str, dict[str, Any]]] = [
    ("acordar-inicio", {}),
    ("admitir", {}),
    ("emitir-informe", {"sentido": "favorable", "motivo": "Conforme"}),
    ("abrir-audiencia", {}),
    ("cerrar-audiencia", {"renuncia": True}),
    ("concluir-instruccion", {}),
    ("formular-propuesta", {"sentido": "estimatoria"}),
    ("resolver", {"sentido": "estimada"}),
]


def _until(
    check: Callable[[], Any], what: str, platform: RunningPlatform, timeout: float = 90
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} never happened:\n{platform.log()[-6000:]}")


def _resolver(client: httpx.Client, platform: RunningPlatform) -> str:
    """Registers a company's solicitud and takes its expediente to the notification."""
    body = factories.asiento(
        procedimiento="generico",
        interesados=[
            factories.interesado(
                tipo_identificador="CIF", identificador=CIF, nombre="Garajes del Sur SL"
            )
        ],
    )
    created = client.post("/api/v1/registro/asientos", json=body)
    assert created.status_code == 201, created.text

    def opened() -> list[dict[str, Any]]:
        found = client.get(
            "/api/v1/tramitador/expedientes", params={"asiento_id": created.json()["id"]}
        )
        items: list[dict[str, Any]] = found.json()["items"]
        return items

    expediente_id = str(_until(opened, "the expediente", platform)[0]["id"])
    url = f"/api/v1/tramitador/expedientes/{expediente_id}"
    for _ in range(20):
        detalle = client.get(url).json()
        if detalle["fase"] == "notificacion":
            return expediente_id
        acciones = {a["codigo"]: a for a in detalle["acciones"]}
        for codigo, datos in PLAN:
            accion = acciones.get(codigo)
            if accion is None or (accion["condiciones_pendientes"] and not datos.get("renuncia")):
                continue
            done = client.post(f"{url}/acciones/{codigo}", json=datos)
            assert done.status_code == 200, done.text
            break
        else:
            raise AssertionError(f"nothing to do in {detalle['fase']}: {detalle['acciones']}")
    raise AssertionError("the expediente never reached its notification")


def test_the_citizen_downloads_the_notified_resolution_through_the_gateway(
    tmp_path: Path, platform_factory, real_servers_env
) -> None:
    platform = start_platform(tmp_path / "var", real_servers_env)
    platform_factory.append(platform)
    staff = {"Authorization": f"Bearer {platform.token('03014', 'registro,tramitador,firma')}"}
    ciudadano = {
        "Authorization": f"Bearer {platform.token('03014', 'ciudadano', sub='garajes', nif=CIF)}"
    }
    with httpx.Client(base_url=platform.base_url, headers=staff, timeout=30) as client:
        _resolver(client, platform)

        def mias() -> list[dict[str, Any]]:
            r = client.get("/api/v1/notificaciones/mias", headers=ciudadano)
            assert r.status_code == 200, r.text
            items: list[dict[str, Any]] = r.json()
            return items

        (notificacion,) = _until(mias, "the notification at disposal", platform)
        assert notificacion["documento"] is None  # not before it is opened
        acceder = f"/api/v1/notificaciones/{notificacion['id']}/acceder"

        # Somebody else, or the same NIF in another council, finds nothing to open.
        otro = platform.token("03014", "ciudadano", sub="otro", nif="12345678Z")
        assert client.post(acceder, headers={"Authorization": f"Bearer {otro}"}).status_code == 404
        fuera = platform.token("46250", "ciudadano", sub="garajes", nif=CIF)
        assert client.post(acceder, headers={"Authorization": f"Bearer {fuera}"}).status_code == 404

        abierta = client.post(acceder, headers=ciudadano)
        assert abierta.status_code == 200, abierta.text
        documento = abierta.json()["documento"]
        assert documento["csv"] and documento["descarga"].endswith(
            f"/verificar/{documento['csv']}/documento"
        )
        # The public download by CSV, through the gateway, with no login.
        pdf = httpx.get(platform.base_url + urlsplit(documento["descarga"]).path, timeout=30)
        assert pdf.status_code == 200, pdf.text[:500]
        assert pdf.headers["content-type"].startswith("application/pdf")
        assert pdf.content.startswith(b"%PDF-")
        # A code nobody was given names nothing.
        falso = "ZXANZ-NR454-H4FLR-KGPBW-P4ZXR"
        assert (
            httpx.get(f"{platform.base_url}/verificar/{falso}/documento", timeout=30).status_code
            == 404
        )
    assert platform.stop() == 0, platform.log()[-4000:]
