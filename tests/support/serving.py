"""Apps served over real loopback sockets, configured as ``consistorio up`` serves them
(services.common.http_server), inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from services.common.http_server import server_config
from services.common.settings import Settings

__all__ = ["serving"]


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    app: Any, settings: Settings, *, trusted_proxies: list[str] | None = None
) -> AsyncIterator[tuple[str, int]]:
    """Serves ``app`` on a free loopback port until the block ends; yields host and port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = _Server(server_config(app, settings, trusted_proxies=trusted_proxies))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
