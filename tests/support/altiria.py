"""A stand-in for Altiria's SMS gateway that speaks its REST protocol over real HTTP.

``POST /apirest/ws/sendSms`` with the JSON body Altiria documents (credentials,
destination, message) answers as Altiria does: HTTP 200 with ``status`` "000" and
per-destination ``details``; a refusal code in ``status`` (e.g. "015" no valid
destination, "020" bad credentials, "001" internal error); HTTP 4xx/5xx with
``{"error": ...}`` for malformed requests or outages. Tests queue the answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.smtp import free_port

__all__ = ["Altiria", "altiria_server"]


@dataclass
class Altiria:
    """The fake gateway's state: the account, what it received, what it will answer."""

    login: str = "ayto@example.org"
    passwd: str = "secreto"
    recibidos: list[dict[str, Any]] = field(default_factory=list)
    # Queued (HTTP status, status code) answers; empty: accept.
    respuestas: list[tuple[int, str]] = field(default_factory=list)

    async def send_sms(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
            credentials = body["credentials"]
            destinations = list(body["destination"])
            msg = str(body["message"]["msg"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "Invalid JSON request"}, status_code=400)
        self.recibidos.append(body)
        if self.respuestas:
            http, status = self.respuestas.pop(0)
            if http != 200:
                return JSONResponse({"error": status}, status_code=http)
            return JSONResponse({"status": status})
        if (credentials.get("login"), credentials.get("passwd")) != (self.login, self.passwd):
            return JSONResponse({"status": "020"})
        if not msg.strip():
            return JSONResponse({"status": "017"})
        details = [
            {"destination": d, "status": "000" if d.isdigit() and len(d) >= 9 else "010"}
            for d in destinations
        ]
        return JSONResponse({"status": "000", "details": details})


@asynccontextmanager
async def altiria_server(altiria: Altiria) -> AsyncIterator[str]:
    """Serves the fake gateway on a free port; yields its base URL (…/apirest/ws)."""
    app = Starlette(routes=[Route("/apirest/ws/sendSms", altiria.send_sms, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/apirest/ws"
    finally:
        server.should_exit = True
        await task
