"""Benchmark: the CPU one gateway hop costs, against HAProxy and nginx in the same place.

Run with ``make bench`` (or ``python -m tests.bench.gateway_hop``). Needs no database or
broker: what is measured is the hop alone, so the upstream is the cheapest endpoint there
is (a service-shaped server, uvicorn on uvloop with httptools, answering a small JSON to
any call under ``/api/v1/<service>``).

Every process runs on its own (the load generator, the upstream, the hop), and the CPU
time (user + system, from ``/proc`` via psutil) of the hop's process is read before and
after a fixed number of requests on keep-alive connections. Options measured:

1. **no hop**: straight to the upstream (what the service itself costs, for scale);
2. **the gateway's streaming proxy** (``gateway.proxy`` on ``gateway.upstream``), as
   ``consistorio serve gateway`` builds it: token verified, rate limits spent, request
   id, problem+json errors; a GET, and a POST of a registration-sized (1 KiB) JSON body;
3. the same gateway on an anonymous public path (no token to verify);
4. the same gateway answering ``/healthz`` itself: the floor of its server and framework;
5. **HAProxy** and 6. **nginx**, each configured as a pure router from the gateway's route
   table (``gateway.routes``: the ``/api/v1/<service>`` prefixes and the public paths),
   one thread or worker, as non-daemon child processes on free ports (GET and POST).

Before them, the hop's HTTP client alone: the gateway's lean one, aiohttp's and httpx's,
each in a process of its own on uvloop, CPU a request read with ``time.process_time``.

``--src-before DIR`` also measures the gateway from another checkout of the code (the
harness stays this one), for a before/after in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from tests.bench.common import UNLIMITED, machine
from tests.support.process import free_port

_ROOT = Path(__file__).resolve().parents[2]
_ANSWER = b'{"ok":true,"service":"bench"}'
# A registration-sized JSON body for the POST rows.
_BODY = b'{"asunto":"' + b"x" * 1000 + b'"}'


# --- the child processes -------------------------------------------------------------


async def _upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The cheapest service-shaped endpoint: any call gets the same small JSON (a body
    is read and dropped)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": _ANSWER})


def _serve_upstream(port: int) -> None:
    import uvicorn

    from services.runner import event_loop_run

    config = uvicorn.Config(
        _upstream_app, host="127.0.0.1", port=port, http="httptools", log_level="warning"
    )
    config.access_log = False
    event_loop_run(uvicorn.Server(config).serve())


def _serve_gateway(port: int, upstream: str, keys_dir: Path) -> None:
    """The gateway as ``consistorio serve gateway`` builds it, tokens from a dev key."""
    import uvicorn

    from gateway.app import create_gateway
    from services.catalog import all_public_paths
    from services.common.auth import JwksKeySource, TokenVerifier
    from services.common.devkeys import ensure_dev_signing_key
    from services.common.http_server import server_config
    from services.common.logging import configure_logging
    from services.common.settings import load_settings
    from services.common.telemetry import configure_telemetry
    from services.runner import event_loop_run

    settings = load_settings(
        service_urls=_segments(upstream),
        rate_limit_per_minute=int(UNLIMITED),
        rate_limit_anonymous_per_minute=int(UNLIMITED),
        rate_limit_tenant_per_minute=int(UNLIMITED),
        gateway_max_in_flight_per_tenant=1024,
        log_level="WARNING",
        log_json=False,
    )
    configure_logging(settings, service_name="gateway")
    configure_telemetry(settings, service_name="gateway")

    async def active(tenant: str) -> bool:
        return True

    verifier = TokenVerifier(
        JwksKeySource(str(ensure_dev_signing_key(keys_dir))),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        algorithms=settings.auth_algorithms,
        tenant_is_active=active,
    )
    app = create_gateway(
        settings=settings,
        verifier=verifier,
        service_urls=settings.service_urls,
        public_paths=all_public_paths(),
    )
    config = server_config(app, settings)
    config.host, config.port = "127.0.0.1", port
    event_loop_run(uvicorn.Server(config).serve())


def _segments(upstream: str) -> dict[str, str]:
    """Every gateway segment (each service's name and routes) to the one upstream."""
    from services.catalog import SERVICES

    return {segment: upstream for load in SERVICES.values() for segment in load().gateway_routes}


# --- the hop's client alone -----------------------------------------------------------


def _clients_only(port: int, requests: int, clients: int, rounds: int) -> None:
    """CPU ms a request of each candidate client alone, in this process on uvloop, as
    JSON on stdout: the gateway's lean one, aiohttp's and httpx's (the one before)."""
    import httpx
    import uvloop

    from gateway.upstream import UpstreamPool

    path = "/api/v1/registro/asientos/bench"
    head = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()
    url = f"http://127.0.0.1:{port}{path}"

    async def lean() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        pool = UpstreamPool(connect_timeout=5, read_timeout=30)

        async def one() -> None:
            exchange = await pool.send(
                "127.0.0.1", port, head, None, chunked=False, head_only=False
            )
            if not exchange.complete:
                async for _ in exchange.chunks():
                    pass
            exchange.take_all()
            exchange.close()

        return one, pool.aclose

    async def with_aiohttp() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), auto_decompress=False
        )

        async def one() -> None:
            async with session.get(url) as response:
                async for _ in response.content.iter_any():
                    pass

        return one, session.close

    async def with_httpx() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        client = httpx.AsyncClient(limits=limits, trust_env=False)

        async def one() -> None:
            response = await client.send(client.build_request("GET", url), stream=True)
            async for _ in response.aiter_raw():
                pass
            await response.aclose()

        return one, client.aclose

    async def measure(
        make: Callable[[], Awaitable[tuple[Callable[[], Awaitable[None]], Any]]],
    ) -> float:
        one, close = await make()

        async def work(n: int) -> None:
            for _ in range(n):
                await one()

        await asyncio.gather(*(work(max(1, requests // 10 // clients)) for _ in range(clients)))
        started = time.process_time()
        await asyncio.gather(*(work(requests // clients) for _ in range(clients)))
        cpu = time.process_time() - started
        await close()
        return cpu * 1000 / (requests // clients * clients)

    candidates = {
        "gateway's lean client": lean,
        "aiohttp": with_aiohttp,
        "httpx (the gateway's before)": with_httpx,
    }
    figures: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, make in candidates.items():
            figures[name].append(uvloop.run(measure(make)))
    print(json.dumps({name: statistics.median(v) for name, v in figures.items()}))


# --- the established proxies ---------------------------------------------------------


def _haproxy(tmp: Path, port: int, upstream: str) -> list[str]:
    from gateway.routes import RouteTable, haproxy_config
    from services.catalog import all_public_paths

    table = RouteTable.from_gateway(_segments(upstream), all_public_paths())
    path = tmp / "haproxy.cfg"
    path.write_text(haproxy_config(table, port=port, threads=1))
    return ["haproxy", "-db", "-f", str(path)]


def _nginx(tmp: Path, port: int, upstream: str) -> list[str]:
    from gateway.routes import RouteTable, nginx_config
    from services.catalog import all_public_paths

    table = RouteTable.from_gateway(_segments(upstream), all_public_paths())
    path = tmp / "nginx.conf"
    path.write_text(nginx_config(table, port=port, workers=1, prefix=tmp))
    return ["nginx", "-p", str(tmp), "-c", str(path), "-e", str(tmp / "error.log")]


# --- the load ------------------------------------------------------------------------


@dataclass
class Result:
    """CPU of the hop's process a request, and how fast the requests went."""

    label: str
    requests: int
    seconds: float
    hop_cpu_ms: float
    upstream_cpu_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


async def _drive(
    url: str, headers: dict[str, str], requests: int, clients: int, body: bytes | None = None
) -> tuple[int, float, list[int]]:
    """``requests`` GETs (POSTs of ``body`` if given) over ``clients`` keep-alive
    connections; the statuses that were not 200."""
    bad: list[int] = []
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                method = "GET" if body is None else "POST"
                async with session.request(method, url, data=body) as response:
                    await response.read()
                    if response.status != 200:
                        bad.append(response.status)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return requests, time.perf_counter() - started, bad


async def _measure(
    label: str,
    url: str,
    headers: dict[str, str],
    hop: list[psutil.Process],
    upstream: psutil.Process,
    *,
    requests: int,
    clients: int,
    body: bytes | None = None,
) -> Result:
    await _drive(url, headers, max(200, requests // 10), clients, body)  # warm pools, caches
    hop_before, up_before = _cpu(hop), _cpu([upstream])
    done, seconds, bad = await _drive(url, headers, requests, clients, body)
    hop_cpu, up_cpu = _cpu(hop) - hop_before, _cpu([upstream]) - up_before
    if bad:
        raise RuntimeError(f"{label}: {len(bad)} answers were not 200 (e.g. {bad[0]})")
    result = Result(label, done, seconds, hop_cpu * 1000 / done, up_cpu * 1000 / done)
    print(
        f"  {label}: {result.rate:,.0f}/s, hop {result.hop_cpu_ms:.3f} ms CPU a request",
        file=sys.stderr,
    )
    return result


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


class _Children:
    """Child processes started by the run, each stopped (TERM, then KILL) at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self, what: str, command: list[str], port: int, env: dict[str, str]
    ) -> psutil.Process:
        log = (self.tmp / f"{what}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        _wait_listening(port, process, what)
        return psutil.Process(process.pid)

    def stop(self, process: psutil.Process) -> None:
        for child in self.running:
            if child.pid == process.pid:
                self._stop(child)
                self.running.remove(child)
                return

    @staticmethod
    def _stop(child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            # nginx stops gracefully on QUIT; TERM is a fast stop for it and for the rest.
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def close(self) -> None:
        for child in reversed(self.running):
            self._stop(child)
        self.running.clear()


def _hop_processes(root: psutil.Process) -> list[psutil.Process]:
    """The process and its workers (nginx's master forks one)."""
    return [root, *root.children(recursive=True)]


@dataclass
class _Option:
    label: str
    url: str
    headers: dict[str, str]
    hop: list[psutil.Process]
    body: bytes | None = None


async def run(args: argparse.Namespace) -> tuple[list[Result], dict[str, float]]:
    """Starts every hop once, then measures them in turn, ``--rounds`` times over.

    Interleaving the options spreads whatever else the machine does over all of them;
    each option's figures are the medians of its rounds.
    """
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        children = _Children(tmp)
        base_env = {**os.environ, "PYTHONPATH": str(_ROOT)}
        try:
            up_port = free_port()
            upstream = children.start(
                "upstream",
                [sys.executable, "-m", "tests.bench.gateway_hop", "--serve-upstream", str(up_port)],
                up_port,
                base_env,
            )
            up_url = f"http://127.0.0.1:{up_port}"
            alone = subprocess.run(
                [sys.executable, "-m", "tests.bench.gateway_hop", "--clients-only", str(up_port)]
                + ["--requests", str(args.requests), "--clients", str(args.clients)]
                + ["--rounds", str(args.rounds)],
                env=base_env,
                capture_output=True,
                text=True,
                check=True,
            )
            client_cpu: dict[str, float] = json.loads(alone.stdout.strip().splitlines()[-1])
            from services.common.devkeys import ensure_dev_signing_key, issue_dev_token

            keys = tmp / "keys"
            keys.mkdir()
            ensure_dev_signing_key(keys)
            token = issue_dev_token(keys, tenant="03014", sub="ana", roles=["registro"])
            auth = {"Authorization": f"Bearer {token}"}
            path = "/api/v1/registro/asientos/bench"
            public = "/verificar/BENCHCSV0001"
            post = {**auth, "Content-Type": "application/json"}
            options = [_Option("no hop: straight to the upstream", up_url + path, auth, [])]

            sources = [("gateway", _ROOT)]
            if args.src_before is not None:
                sources.append(("gateway before", args.src_before.resolve()))
            for name, src in sources:
                port = free_port()
                env = {**base_env, "PYTHONPATH": f"{src}{os.pathsep}{_ROOT}"}
                command = [sys.executable, str(Path(__file__)), "--serve-gateway", str(port)]
                command += ["--upstream", up_url, "--keys", str(keys)]
                gateway = children.start(name.replace(" ", "_"), command, port, env)
                base = f"http://127.0.0.1:{port}"
                options += [
                    _Option(f"{name}: token, limits, proxy", base + path, auth, [gateway]),
                    _Option(f"{name}: the same, POST 1 KiB", base + path, post, [gateway], _BODY),
                    _Option(f"{name}: public path, no token", base + public, {}, [gateway]),
                    _Option(f"{name}: its own /healthz, no hop", base + "/healthz", {}, [gateway]),
                ]

            for name, config in (("HAProxy", _haproxy), ("nginx", _nginx)):
                if shutil.which(name.lower()) is None:
                    print(f"  {name} not installed: left out", file=sys.stderr)
                    continue
                port = free_port()
                hop = children.start(name, config(tmp, port, up_url), port, base_env)
                url = f"http://127.0.0.1:{port}{path}"
                options.append(_Option(f"{name}, pure router", url, auth, _hop_processes(hop)))
                options.append(
                    _Option(f"{name}, POST 1 KiB", url, post, _hop_processes(hop), _BODY)
                )

            rounds: dict[str, list[Result]] = {option.label: [] for option in options}
            for _ in range(args.rounds):
                for option in options:
                    rounds[option.label].append(
                        await _measure(
                            option.label,
                            option.url,
                            option.headers,
                            option.hop,
                            upstream,
                            requests=args.requests,
                            clients=args.clients,
                            body=option.body,
                        )
                    )
        finally:
            children.close()
    return [_median(label, results) for label, results in rounds.items()], client_cpu


def _median(label: str, results: list[Result]) -> Result:
    def mid(values: list[float]) -> float:
        return statistics.median(values)

    return Result(
        label,
        results[0].requests,
        mid([r.seconds for r in results]),
        mid([r.hop_cpu_ms for r in results]),
        mid([r.upstream_cpu_ms for r in results]),
    )


def report(results: list[Result], client_cpu: dict[str, float], args: argparse.Namespace) -> None:
    """The Markdown table for docs/benchmarks.md, ratios against HAProxy's hop."""
    print(
        f"\nMachine: {machine()}; {args.requests} requests a row over {args.clients} "
        f"connections, medians of {args.rounds} interleaved rounds\n"
    )
    reference = next((r for r in results if r.label.startswith("HAProxy")), None)
    print(
        "| what | requests/s | hop CPU ms a request | upstream CPU ms a request | hop ÷ HAProxy |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in results:
        ratio = f"{r.hop_cpu_ms / reference.hop_cpu_ms:.1f}" if reference and r.hop_cpu_ms else "–"
        cells = f"{r.rate:,.0f} | {r.hop_cpu_ms:.3f} | {r.upstream_cpu_ms:.3f} | {ratio}"
        print(f"| {r.label} | {cells} |")
    lean = client_cpu.get("gateway's lean client")
    print("\nThe hop's HTTP client alone (same requests, its process's CPU, uvloop):\n")
    print("| client | CPU ms a request | ÷ the lean client |")
    print("|---|---:|---:|")
    for name, cpu in client_cpu.items():
        print(
            f"| {name} | {cpu:.3f} | {cpu / lean:.1f} |" if lean else f"| {name} | {cpu:.3f} | – |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src-before", type=Path, default=None)
    parser.add_argument("--serve-upstream", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--clients-only", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream is not None:
        _serve_upstream(args.serve_upstream)
    elif args.serve_gateway is not None:
        _serve_gateway(args.serve_gateway, args.upstream, args.keys)
    elif args.clients_only is not None:
        _clients_only(args.clients_only, args.requests, args.clients, args.rounds)
    else:
        report(*asyncio.run(run(args)), args)


if __name__ == "__main__":
    main()
