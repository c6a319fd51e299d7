"""HAProxy and nginx configurations generated from the gateway's route table.

Each is checked by the proxy itself (``haproxy -c``, ``nginx -t``) and then run, as a
child process in the foreground, in front of a real service, to see that it routes as
the gateway does: ``/api/v1/<segment>`` to its service with the path untouched, a public
path rewritten to ``/api/v1/<segment>/<upstream>``, and anything else a 404 problem.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.routes import RouteTable, haproxy_config, nginx_config
from services.catalog import SERVICES, all_public_paths
from services.common.public_paths import PublicPath
from services.common.settings import Settings
from tests.support.process import free_port
from tests.support.servers import require_tool
from tests.support.serving import serving

pytestmark = pytest.mark.integration


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The path and query the service got, and the method."""
    if scope["type"] != "http":
        return
    body = f"{scope['method']} {scope['raw_path'].decode()}?{scope['query_string'].decode()}"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


def _table(url: str) -> RouteTable:
    segments = {s: url for load in SERVICES.values() for s in load().gateway_routes}
    return RouteTable.from_gateway(segments, all_public_paths())


def _require(binary: str, package: str) -> str:
    # Debian installs both under /usr/sbin, which a user's PATH may lack.
    sbin = Path("/usr/sbin") / binary
    return str(sbin) if sbin.exists() else require_tool(binary, package)


def _haproxy(tmp_path: Path, port: int, url: str) -> list[str]:
    binary = _require("haproxy", "haproxy")
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(_table(url), port=port, threads=1))
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return [binary, "-db", "-f", str(config)]


def _nginx(tmp_path: Path, port: int, url: str) -> list[str]:
    binary = _require("nginx", "nginx-light")
    config = tmp_path / "nginx.conf"
    user = "root" if os.geteuid() == 0 else None
    config.write_text(nginx_config(_table(url), port=port, prefix=tmp_path, workers=1, user=user))
    base = [binary, "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return base


@contextlib.contextmanager
def _running(command: list[str], port: int) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def _service() -> AsyncIterator[str]:
    async with serving(_echo, Settings(environment="test")) as (host, port):
        yield f"http://{host}:{port}"


@pytest.mark.parametrize("proxy", [_haproxy, _nginx], ids=["haproxy", "nginx"])
async def test_the_generated_config_validates_and_routes_like_the_gateway(
    tmp_path: Path, proxy: Any
) -> None:
    async with _service() as url:
        port = free_port()
        command = proxy(tmp_path, port, url)
        with _running(command, port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                api = await client.get("/api/v1/registro/asientos/2026%2F1?x=1")
                assert api.status_code == 200
                assert api.text == "GET /api/v1/registro/asientos/2026%2F1?x=1"
                collection = await client.post("/api/v1/documentos", content=b"{}")
                assert collection.text == "POST /api/v1/documentos?"
                public = await client.get("/verificar/ABC123?formato=pdf")
                assert public.text == "GET /api/v1/csv/verificar/ABC123?formato=pdf"
                nested = await client.get("/verificar/ABC123/documento")
                assert nested.text == "GET /api/v1/documentos/verificar/ABC123/documento?"
                tsa = await client.post("/tsa", content=b"\x30\x00")
                assert tsa.text == "POST /api/v1/sellado/tsa?"
                for unknown in ("/api/v1/padron/x", "/nada", "/api/v1x/registro"):
                    missing = await client.get(unknown)
                    assert missing.status_code == 404, unknown
                    assert missing.headers["content-type"] == "application/problem+json"
                # A public path answers only its methods.
                assert (await client.delete("/verificar/ABC123")).status_code in (403, 404, 405)


def test_a_route_table_refuses_what_a_router_cannot_express() -> None:
    with pytest.raises(ValueError, match="only http"):
        RouteTable.from_gateway({"registro": "https://registro:8443"}, [])
    with pytest.raises(ValueError, match="segment"):
        RouteTable.from_gateway({"Registro Civil": "http://registro:8000"}, [])
    table = RouteTable.from_gateway(
        {"csv": "http://csv:8000"},
        [PublicPath("/verificar/{csv}", "csv", "verificar/{csv}"), PublicPath("/x", "otro", "x")],
    )
    # A public path of a segment with no service is left out, as the gateway 404s it.
    assert [r.segment for r in table.public] == ["csv"]
    assert table.upstreams == {"csv": ("csv", 8000)}
