"""The card payment in a real browser: headless Chromium, driven over the DevTools
protocol, goes from the sede's "pay by card" button to the Redsys simulator, pays, and
comes back through the real gateway to the page that shows the liquidación paid and,
once the chain issued it, the link to the sealed justificante de pago.

pagos, repositorio, csv and sellado run in process on real PostgreSQL and the
in-process bus, each served by uvicorn on a loopback port behind the gateway; the
simulator is served on a port of its own, like the bank's site it stands for, and
notifies the gateway's public path over HTTP as Redsys does.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from pyhanko.pdf_utils.reader import PdfFileReader

from gateway.app import create_gateway
from services.bootstrap import Platform, build_platform
from services.catalog import all_public_paths
from services.common.bus.inprocess import InProcessTransport
from services.common.settings import Settings
from services.pagos.simulador import crear_simulador
from services.repositorio.storage.filesystem import FilesystemBlobStore
from tests.support.pagos import CLAVE_PRUEBAS
from tests.support.platforms import bearer
from tests.support.servers import require_tool
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the test process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """Serves ``app`` on a free loopback port for the block; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, lifespan=lifespan, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started or task.done(), timeout=30)
        if task.done():
            task.result()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class Navegador:
    """Headless Chromium and one page of it, over the Chrome DevTools Protocol."""

    def __init__(self, proceso: asyncio.subprocess.Process, ws: Any) -> None:
        self._proceso = proceso
        self._ws = ws
        self._ids = itertools.count(1)
        self._eventos: list[dict[str, Any]] = []

    async def orden(self, metodo: str, **params: Any) -> dict[str, Any]:
        """Sends one command and returns its result (events meanwhile are kept)."""
        ident = next(self._ids)
        await self._ws.send(json.dumps({"id": ident, "method": metodo, "params": params}))
        while True:
            mensaje = json.loads(await asyncio.wait_for(self._ws.recv(), timeout=60))
            if mensaje.get("id") == ident:
                assert "error" not in mensaje, mensaje
                resultado: dict[str, Any] = mensaje.get("result", {})
                return resultado
            self._eventos.append(mensaje)

    async def cargada(self) -> None:
        """Waits for the next page load to finish."""
        while True:
            if any(e.get("method") == "Page.loadEventFired" for e in self._eventos):
                self._eventos.clear()
                return
            self._eventos.append(json.loads(await asyncio.wait_for(self._ws.recv(), timeout=60)))

    async def evalua(self, expresion: str) -> Any:
        resultado = await self.orden("Runtime.evaluate", expression=expresion, returnByValue=True)
        return resultado["result"].get("value")

    async def pulsa(self, selector: str) -> None:
        """Clicks an element and waits for the page it leads to."""
        self._eventos.clear()
        await self.evalua(f"document.querySelector({json.dumps(selector)}).click()")
        await self.cargada()


@contextlib.asynccontextmanager
async def chromium(binary: str, perfil: Path) -> AsyncIterator[Navegador]:
    proceso = await asyncio.create_subprocess_exec(
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={perfil}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proceso.stderr is not None
        puerto = None
        while puerto is None:
            linea = (await asyncio.wait_for(proceso.stderr.readline(), timeout=60)).decode()
            assert linea, "Chromium exited before opening DevTools"
            if hallado := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", linea):
                puerto = hallado.group(1)
        async with httpx.AsyncClient() as http:
            paginas = (await http.get(f"http://127.0.0.1:{puerto}/json/list")).json()
        url = next(p["webSocketDebuggerUrl"] for p in paginas if p["type"] == "page")
        async with websockets.connect(url, max_size=None) as ws:
            navegador = Navegador(proceso, ws)
            await navegador.orden("Page.enable")
            yield navegador
    finally:
        proceso.kill()
        await proceso.wait()


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[Platform]:
    running = await build_platform(
        settings, ["pagos", "csv", "sellado", "repositorio"], transport=InProcessTransport()
    )
    running.apps["repositorio"].state.blob_store = FilesystemBlobStore(tmp_path / "documentos")
    for runtime in running.runtimes.values():
        await runtime.start()
    yield running
    await running.close()


async def test_a_citizen_pays_by_card_in_a_browser(
    platform: Platform, settings: Settings, new_tenant, token, tmp_path: Path
) -> None:
    binary = require_tool("chromium", "chromium")
    tenant = await new_tenant()
    async with (
        serving(platform.apps["pagos"]) as pagos_url,
        serving(platform.apps["repositorio"]) as repositorio_url,
        serving(platform.apps["csv"]) as csv_url,
        serving(crear_simulador()) as banco_url,
    ):
        gateway = create_gateway(
            settings=settings,
            verifier=platform.verifier,
            service_urls={"pagos": pagos_url, "documentos": repositorio_url, "csv": csv_url},
            public_paths=all_public_paths(),
        )
        async with serving(gateway, lifespan="on") as base:
            # What the council's public address is, for the URLs pagos signs.
            runtime = platform.runtimes["pagos"]
            runtime.settings = runtime.settings.model_copy(update={"public_base_url": base})
            async with httpx.AsyncClient(base_url=base, timeout=30) as api:
                configurada = await api.put(
                    "/api/v1/pagos/configuracion",
                    headers=bearer(token(tenant, "admin")),
                    json={
                        "redsys": {
                            "comercio": "999008881",
                            "terminal": "1",
                            "clave": CLAVE_PRUEBAS,
                            "url": f"{banco_url}/sis/realizarPago",
                        },
                        "cuaderno60": {"emisora": "030140"},
                    },
                )
                assert configurada.status_code == 200, configurada.text
                emitida = await api.post(
                    "/api/v1/pagos/liquidaciones",
                    headers=bearer(token(tenant, "pagos")),
                    json={
                        "concepto": "Tasa por licencia de obra menor",
                        "importe": "159.00",
                        "obligado": {
                            "tipo_identificador": "NIF",
                            "identificador": "12345678Z",
                            "nombre": "María",
                        },
                    },
                )
                assert emitida.status_code == 201, emitida.text
                liquidacion = emitida.json()
                ciudadana = bearer(token(tenant, "ciudadano", sub="maria", nif="12345678Z"))

                async def carta() -> Any:
                    r = await api.get(liquidacion["enlaces"]["carta_de_pago"], headers=ciudadana)
                    return r.json() if r.status_code == 200 else None

                carta_emitida = await eventually(carta, timeout=60)
                pdf = await api.get(f"/verificar/{carta_emitida['csv']}/documento")
                assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
                formulario = (
                    await api.post(liquidacion["enlaces"]["pago_tarjeta"], headers=ciudadana)
                ).json()

                # The sede's page with the "pay by card" button (the form pagos signed).
                campos = "".join(
                    f'<input type="hidden" name="{n}" value="{html.escape(formulario[n])}">'
                    for n in ("Ds_SignatureVersion", "Ds_MerchantParameters", "Ds_Signature")
                )
                sede = tmp_path / "sede.html"
                sede.write_text(
                    f'<!doctype html><form method="post" action="{formulario["url"]}">{campos}'
                    '<button id="ir" type="submit">Pagar con tarjeta</button></form>',
                    encoding="utf-8",
                )
                async with chromium(binary, tmp_path / "perfil") as navegador:
                    await navegador.orden("Page.navigate", url=sede.as_uri())
                    await navegador.cargada()
                    await navegador.pulsa("#ir")
                    assert (await navegador.evalua("location.href")).startswith(banco_url)
                    texto = await navegador.evalua("document.body.innerText")
                    assert formulario["orden"] in texto and "159,00" in texto
                    await navegador.pulsa("#pagar")
                    assert (await navegador.evalua("location.href")).startswith(
                        f"{base}/pagos/redsys/vuelta?"
                    )
                    estado = await navegador.evalua(
                        "document.getElementById('estado').dataset.estado"
                    )
                    assert estado == "pagada"

                    async def justificante() -> Any:
                        await navegador.orden("Page.reload")
                        await navegador.cargada()
                        return await navegador.evalua(
                            "document.getElementById('justificante')?.href"
                        )

                    enlace = await eventually(justificante, timeout=60, interval=0.5)
                assert enlace.startswith(f"{base}/verificar/")
                recibo = await api.get(enlace)
                assert recibo.status_code == 200
                assert PdfFileReader(BytesIO(recibo.content)).embedded_signatures
                pagada = await api.get(
                    liquidacion["enlaces"]["self"], headers=bearer(token(tenant, "pagos"))
                )
                assert (pagada.json()["estado"], pagada.json()["justificante_pago"]) == (
                    "pagada",
                    formulario["orden"],
                )
