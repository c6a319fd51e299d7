"""Public verification in a real browser: headless Chromium through the real gateway.

The csv service and the gateway are served by uvicorn on loopback ports, the
gateway forwarding ``/verificar`` and ``/verificar/{csv}`` as it does in
production; Chromium loads the pages (no JavaScript needed), and what it
rendered is checked in its DOM and in a screenshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from gateway.app import create_gateway
from services.bootstrap import Platform, build_platform
from services.catalog import all_public_paths
from services.common.bus.inprocess import InProcessTransport
from services.common.settings import Settings
from services.common.uow import Actor
from services.csv import service
from tests.support.servers import require_tool

pytestmark = pytest.mark.e2e

_PNG = b"\x89PNG\r\n\x1a\n"
_WIDTH, _HEIGHT = 1000, 1300


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the test process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI, *, lifespan: str) -> AsyncIterator[str]:
    """Serves ``app`` on a free loopback port for the block; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, lifespan=lifespan, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    running = await build_platform(settings, ["csv"], transport=InProcessTransport())
    await running.runtimes["csv"].start()
    yield running
    await running.close()


async def issue_code(platform: Platform, tenant: str) -> str:
    """Reserves and activates a code with the service's own use cases."""
    runtime = platform.runtimes["csv"]
    documento_id = str(uuid.uuid4())
    async with runtime.unit_of_work(tenant, Actor.system("pruebas")) as uow:
        csv = await service.reservar_codigo(
            uow,
            solicitud_id=str(uuid.uuid4()),
            solicitante="pruebas",
            documento_id=documento_id,
            base_url=runtime.settings.public_base_url,
        )
    async with runtime.unit_of_work(tenant, Actor.system("pruebas")) as uow:
        await service.activar_codigo(
            uow,
            {
                "documento_id": documento_id,
                "version": 2,
                "csv": csv,
                "sha256": "c3" * 32,
                "tamano": 73_406,
                "nombre_fichero": "resolucion-alcaldia-2026-118.pdf",
                "identificador": "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4",
                "tipo_documental": "TD01",
                "organo": "L01030149",
                "emitido_en": "2026-03-10T11:05:00+00:00",
                "firmante": "Sello electrónico de Ayuntamiento de prueba",
                "sello_tiempo": "2026-03-10T11:04:57+00:00",
            },
            entidad=f"Ayuntamiento de prueba {tenant}",
        )
    return csv


async def chromium(binary: str, profile: Path, *args: str) -> str:
    """Runs headless Chromium once and returns what it printed."""
    process = await asyncio.create_subprocess_exec(
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-4000:]
    return out.decode()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == _PNG, "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_a_person_verifies_a_document_in_a_browser(
    platform: Platform, settings: Settings, new_tenant, tmp_path: Path
) -> None:
    binary = require_tool("chromium", "chromium")
    tenant = await new_tenant()
    csv = await issue_code(platform, tenant)
    async with serving(platform.apps["csv"], lifespan="off") as csv_url:
        gateway = create_gateway(
            settings=settings,
            verifier=platform.verifier,
            service_urls={"csv": csv_url},
            public_paths=all_public_paths(),
        )
        async with serving(gateway, lifespan="on") as base:
            # Typed the way people do; the form's redirect brings the browser to the page.
            typed = csv.lower().replace("-", "%20")
            dom = await chromium(
                binary, tmp_path / "perfil", "--dump-dom", f"{base}/verificar?csv={typed}"
            )
            for shown in (
                "Documento auténtico",
                csv,
                f"Ayuntamiento de prueba {tenant}",
                "resolucion-alcaldia-2026-118.pdf",
                "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4",
                "Resolución (TD01)",
                "10 de marzo de 2026, 12:05:00",
                "Sello electrónico de Ayuntamiento de prueba",
                "c3" * 32,
                "73.406 bytes",
            ):
                assert shown in dom, shown
            assert f'href="{csv}/documento"' in dom
            assert "Descargar el documento original" in dom

            form = await chromium(binary, tmp_path / "perfil", "--dump-dom", f"{base}/verificar")
            assert '<label for="csv">' in form and 'name="csv"' in form

            screenshot = tmp_path / "verificar.png"
            await chromium(
                binary,
                tmp_path / "perfil",
                f"--screenshot={screenshot}",
                f"--window-size={_WIDTH},{_HEIGHT}",
                "--hide-scrollbars",
                f"{base}/verificar/{csv}",
            )
    assert screenshot.exists()
    assert png_size(screenshot) == (_WIDTH, _HEIGHT)
    # A blank page compresses to a few hundred bytes; text, table and colours do not.
    assert screenshot.stat().st_size > 20_000
    # The header's colour comes from the inline stylesheet: the browser applied it, so
    # the Content-Security-Policy's hash of it is right.
    with Image.open(screenshot) as image:
        assert image.convert("RGB").getpixel((5, 5)) == (0x1D, 0x3D, 0x5C)
