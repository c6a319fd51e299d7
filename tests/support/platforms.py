"""Services wired as the platform wires them, for integration tests: in-process bus,
runtimes started, an HTTP client on one app, and a listener for bus messages."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from services.bootstrap import Platform, build_platform
from services.common.bus.envelope import ReceivedEvent, parse_envelope
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.transport import Delivery, Transport
from services.common.settings import Settings
from services.registro.anexos.repositorio_client import RepositorioClient

__all__ = [
    "DirectDelivery",
    "asgi_client",
    "bearer",
    "collect_events",
    "connect_repositorio",
    "record_documents",
    "running_platform",
]


def record_documents(platform: Platform) -> list[str]:
    """Makes the platform's document workers remember the name of every function they
    run (they still run it); answers that list, which fills as they work."""
    pool = platform.documents
    assert pool is not None, "the platform has no document workers"
    calls: list[str] = []
    run = pool.run

    async def recording(tenant: str, fn: Any, *args: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await run(tenant, fn, *args)

    setattr(pool, "run", recording)  # noqa: B010 (an instance attribute over the method)
    return calls


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def running_platform(settings: Settings, services: Sequence[str]) -> AsyncIterator[Platform]:
    """The named services on the in-process bus, relays and consumers running."""
    platform = await build_platform(settings, list(services), transport=InProcessTransport())
    await platform.start()
    try:
        yield platform
    finally:
        await platform.close()


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that calls ``app`` in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


def connect_repositorio(platform: Platform) -> None:
    """Lets the platform's registro read documents from its in-process repositorio."""
    transport = httpx.ASGITransport(app=platform.apps["repositorio"])
    client = RepositorioClient("http://repositorio", transport=transport)
    platform.apps["registro"].state.repositorio_client = client


async def collect_events(transport: Transport, *bindings: str) -> list[ReceivedEvent]:
    """Subscribes a fresh queue to ``bindings``; the list fills as messages arrive."""
    received: list[ReceivedEvent] = []

    async def collect(delivery: Delivery) -> None:
        received.append(parse_envelope(delivery.body))
        await delivery.ack()

    await transport.subscribe(f"pruebas.{uuid.uuid4().hex}", list(bindings), collect)
    return received


class DirectDelivery(Delivery):
    """A delivery handed straight to a consumer (as a redelivery would come), to know
    exactly when it has been processed and whether it was acknowledged."""

    def __init__(self, event: dict[str, Any], name: str) -> None:
        self.routing_key = f"{event['tenantid']}.{name}"
        self.body = json.dumps(event).encode()
        self.message_id = event["id"]
        self.content_type = "application/cloudevents+json"
        self.headers = {}
        self.redelivered = True
        self.queue = "pruebas.directa"
        self.acked = False

    async def ack(self) -> None:
        self.acked = True

    async def reject(self, *, requeue: bool) -> None:
        raise AssertionError("the consumer should have acked")
